# Sparse training (kind: sparse_training): every cell is trained by the `train` rule (the method
# reaches its sparsity during training); then one tidy table, a summary, the paper-shaped table
# with published numbers joined in, and the accuracy-vs-sparsity figure.


# Cheap steps run on the submitting host, not as cluster jobs.
localrules:
    aggregate_sparse,
    figures_sparse,


rule aggregate_sparse:
    input:
        metrics=sparse_metrics_files,
        published=published_results_input,
    output:
        runs=sparse_table("runs"),
        summary=sparse_table("summary"),
        paper_csv=sparse_table("paper_csv"),
        paper_md=sparse_table("paper_md"),
    conda:
        CONDA_ENV
    log:
        experiment_log("aggregate_sparse"),
    params:
        expected=expected_hashes_json,
        info=sparse_experiment_info_json,
    resources:
        runtime=10,
        mem_mb=2000,
    shell:
        "python -m bench_powerprop.sparse_report aggregate --expected {params.expected:q}"
        " --experiment-info {params.info:q} --published {input.published:q}"
        " --runs-out {output.runs} --summary-out {output.summary}"
        " --paper-csv-out {output.paper_csv} --paper-md-out {output.paper_md} > {log} 2>&1"


rule figures_sparse:
    input:
        runs=sparse_table("runs"),
    output:
        sparse_figure(),
    conda:
        CONDA_ENV
    log:
        experiment_log("figures_sparse"),
    params:
        title=experiment_title,
    resources:
        runtime=10,
        mem_mb=2000,
    shell:
        "python -m bench_powerprop.sparse_report figure --runs {input.runs}"
        " --title {params.title:q} --out {output} > {log} 2>&1"
