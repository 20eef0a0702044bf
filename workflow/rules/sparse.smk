# Sparse training (kind: sparse_training): every cell is trained by the `train` rule (the method
# reaches its sparsity during training); then the tidy table, a summary, the paper-shaped tables
# with published numbers beside ours, and the accuracy-vs-sparsity figure.


localrules:
    aggregate_sparse,
    figures_sparse,


rule aggregate_sparse:
    input:
        manifest=experiment_file("manifest.json"),
        metrics=cell_files_of("metrics.json"),
        published=published_results_input,
    output:
        runs=experiment_file("tables/sparse_runs.csv"),
        summary=experiment_file("tables/sparse_summary.csv"),
        paper_csv=experiment_file("tables/sparse_paper_table.csv"),
        paper_md=experiment_file("tables/sparse_paper_table.md"),
        page=report(
            experiment_file("tables/sparse_paper_table.html"),
            caption="../report/sparse_paper_table.rst",
            category=EXPERIMENT_CATEGORY,
            subcategory=TABLES,
            labels={"table": "sparse training beside published numbers"},
        ),
    log:
        experiment_log("aggregate_sparse"),
    conda:
        CONDA_ENV
    params:
        out_dir=experiment_dir,
    shell:
        "python -m bench_powerprop report tables --manifest {input.manifest:q} --published {input.published:q}"
        " --out-dir {params.out_dir:q} > {log:q} 2>&1"


rule figures_sparse:
    input:
        manifest=experiment_file("manifest.json"),
        runs=experiment_file("tables/sparse_runs.csv"),
    output:
        report(
            experiment_file("figures/sparse_accuracy_vs_sparsity.png"),
            caption="../report/sparse_accuracy.rst",
            category=EXPERIMENT_CATEGORY,
            subcategory=ACCURACY_FIGURES,
            labels={"figure": "sparse training: accuracy vs. sparsity"},
        ),
    log:
        experiment_log("figures_sparse"),
    conda:
        CONDA_ENV
    params:
        out_dir=experiment_dir,
    shell:
        "python -m bench_powerprop report figures --manifest {input.manifest:q}"
        " --out-dir {params.out_dir:q} > {log:q} 2>&1"
