# The reproduction summary beside the experiments, both pages flagged for Snakemake's report: the
# claims page (every claim of the source documents judged by one rule on the active experiments'
# tables, bench_powerprop.reporting.claims) and the provenance table (commit, packages, hosts,
# config hash). `snakemake --report results/report.html` then builds the report (make run does).


localrules:
    claims,
    provenance,


rule claims:
    input:
        manifests=active_manifests,
        tables=active_tables,
    output:
        csv=reproduction_file("claims.csv"),
        overview=reproduction_file("claims_overview.html"),
        markdown=reproduction_file("claims.md"),
        page=report(
            reproduction_file("claims.html"),
            caption="../report/claims.rst",
            category=SUMMARY_CATEGORY,
            subcategory="Claims",
            labels={"table": "claims: what reproduced"},
        ),
        forest=report(
            reproduction_file("claims_forest.png"),
            caption="../report/claims_forest.rst",
            category=SUMMARY_CATEGORY,
            subcategory="Claims",
            labels={"figure": "claims: forest plot"},
        ),
    log:
        reproduction_file("logs/claims.log"),
    conda:
        CONDA_ENV
    params:
        manifests=manifest_arguments,
    shell:
        "python -m bench_powerprop claims {params.manifests:q} --csv {output.csv:q}"
        " --overview {output.overview:q} --markdown {output.markdown:q} --page {output.page:q}"
        " --figure {output.forest:q} > {log:q} 2>&1"


# Provenance reads every cell's run.json; training writes it before the cell's metrics.json, on which every
# table depends: the tables stand for the run.json files (one fan-in over the cells, the aggregates', not two).
rule provenance:
    input:
        manifests=active_manifests,
        tables=active_tables,
    output:
        csv=reproduction_file("provenance.csv"),
        markdown=reproduction_file("provenance.md"),
        page=report(
            reproduction_file("provenance.html"),
            caption="../report/provenance.rst",
            category=SUMMARY_CATEGORY,
            subcategory="Provenance",
            labels={"table": "provenance"},
        ),
    log:
        reproduction_file("logs/provenance.log"),
    conda:
        CONDA_ENV
    params:
        manifests=manifest_arguments,
        config_hash=CONFIG_HASH,
        git_commit=GIT_COMMIT,
        overrides=OVERRIDE_ARGUMENTS,
    shell:
        "python -m bench_powerprop provenance {params.manifests:q} --config-hash {params.config_hash:q}"
        " --git-commit {params.git_commit:q} {params.overrides:q} --csv {output.csv:q} --markdown {output.markdown:q}"
        " --page {output.page:q} > {log:q} 2>&1"
