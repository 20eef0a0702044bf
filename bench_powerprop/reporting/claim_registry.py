"""Every testable claim of the four source documents, as data (``claim_types.Claim``), keyed as in issue 18.

P: Powerpropagation (Schwarz et al., NeurIPS 2021); S: the student reproduction report (Jain, Raj,
Asgaonkar 2022); G: Evci, Ioannou, Keskin, Dauphin, "Gradient Flow in Sparse Neural Networks and How
Lottery Tickets Win", AAAI 2022; L: Price, "Sparsity in Deep Learning", lecture, Oxford 2021. Claims
are keyed by experiment kind (and, where a claim belongs to one experiment, its name); a table or
experiment that a run lacks gives a "not run" row. Accuracy margins are stated once
(``ACCURACY_MARGIN``) and never tuned to a result.
"""

from __future__ import annotations

import math
from dataclasses import replace

from bench_powerprop.reporting.claim_types import Claim
from bench_powerprop.reporting.statistics import EQUIVALENCE

POWERPROP = "Schwarz, Jayakumar, Pascanu, Latham, Teh: Powerpropagation, NeurIPS 2021 (arXiv:2110.00296)"
NOTEBOOK = ("github.com/google-deepmind/deepmind-research powerpropagation/powerpropagation.ipynb @ 243aff2, "
            "cells 'Pruning' and 'Plot'")
STUDENT = "Jain, Raj, Asgaonkar: Powerpropagation (reproduction report, 2022)"
EVCI = ("Evci, Ioannou, Keskin, Dauphin: Gradient Flow in Sparse Neural Networks and How Lottery Tickets Win, AAAI 2022 "
        "(arXiv:2010.03533)")
PRICE = "Price: Sparsity in Deep Learning, lecture, Oxford 2021"

#: accuracy differences smaller than one percentage point count as "the same accuracy" / "without sacrificing much"
ACCURACY_MARGIN = 0.01
#: a gradient norm within 10% (log ratio log 1.1) counts as "not improved"
GRADIENT_LOG_MARGIN = math.log(1.1)

#: the sources' own sentences (verbatim; the abstracts of arXiv:2110.00296, arXiv:2010.03533v2 / AAAI 2022, arXiv:1803.03635)
POWERPROP_ABSTRACT = ('Models trained in this manner exhibit similar performance, but have a distribution with '
                      'markedly higher density at zero, allowing more parameters to be pruned safely.')
POWERPROP_SPARSE_TRAINING = ('Here, we combine Powerpropagation with a traditional weight-pruning technique as well as recent '
                             'state-of-the-art sparse-to-sparse algorithms, showing superior performance on the ImageNet benchmark.')
POWERPROP_CONTINUAL = ('Secondly, we advocate the use of sparsity in overcoming catastrophic forgetting, where compressed '
                       'representations allow accommodating a large number of tasks at fixed model capacity.')
EVCI_INIT = ('We show that sparse NNs have poor gradient flow at initialization and demonstrate the '
             'importance of using sparsity-aware initialization.')
EVCI_DST = ('Furthermore, we find that DST methods significantly improve gradient flow during training '
            'over traditional sparse training methods.')
EVCI_TICKETS = ('Finally, we show that LTs do not improve gradient flow, rather their success lies in re-learning the'
                ' pruning solution they are derived from - however, this comes at the cost of learning novel solutions.')
#: for the claims-exp rows P6 and G7 (the abstract of arXiv:2110.00296; §1 of arXiv:2010.03533v2)
POWERPROP_SMALL_WEIGHTS = ('Exploiting the behaviour of gradient descent, our method gives rise to weight updates exhibiting a '
                           '"rich get richer" dynamic, leaving low-magnitude parameters largely unaffected by learning.')
EVCI_STATIC = ('However, naively training an (unstructured) sparse NN from a random initialization (i.e. from scratch), '
               'typically leads to significantly worse generalization.')
LTH_ABSTRACT = ('We find that a standard pruning technique naturally uncovers subnetworks whose '
                'initializations made them capable of training effectively.')
#: the student report and the lecture are not available to the harness verbatim: their rows declare no
#: ``sentence``, and the page shows the claim's own text marked as a paraphrase

#: smallest effects of interest (issue 28): "reproduces" needs the whole interval beyond them
ACCURACY_EFFECT = 0.005  # half a percentage point of accuracy
DENSITY_EFFECT = 0.01  # one percentage point of the weights near zero
RHO_EFFECT = 0.5  # a Spearman ρ of at least 0.5: "grows with α"
BIMODALITY_EFFECT = 0.05  # Sarle's coefficient; 5/9 ≈ 0.556 separates one heap from two
DISTANCE_EFFECT = 0.05  # 5% of the pruning solution's norm; also P6's movement in units of the initial std
DISAGREEMENT_EFFECT = 0.01  # one percentage point of the test predictions
ENSEMBLE_EFFECT = 0.005  # half a percentage point of ensemble gain
#: chance accuracy of the 10-class datasets: what an accuracy claim counts a diverged run at when it reached none
CHANCE_ACCURACY = 0.1
#: the scorers of the shuffling controls (L3, L3b); the default runs SynFlow's over sparsity (80-98%), the others at 98%
SHUFFLED_SCORERS = ("snip", "grasp", "synflow")
#: the compression claim's sparsities (L6)
COMPRESSION_AXIS = (0.8, 0.9, 0.95, 0.99)

POWERPROP_ALPHA = {"alpha": {">": 1}}
NO_POWERPROP = {"alpha": 1}
BEST_POWERPROP_ALPHA = {"alpha": {">": 1, "best": "val_accuracy"}}
UNPRUNED = {"evaluation": "oneshot", "target_sparsity": {"<": 0.001}}
CNN_EXPERIMENT = "oneshot_mnist_cnn"
CIFAR_CNN_EXPERIMENT = "oneshot_cifar10_cnn"
#: the CNN experiments have claims of their own (S5, S6, S5c); the MLP claims of the oneshot kind skip them
CNN_EXPERIMENTS = (CNN_EXPERIMENT, CIFAR_CNN_EXPERIMENT)
#: the structured sparse-training experiments (configs/structured_sparse.yaml) have claims of their own (H2a, H2b);
#: the claims about unstructured sparse training skip them
STRUCTURED_SPARSE_EXPERIMENTS = ("sparse_digits_2of4", "sparse_digits_channel")
#: sparse-training experiments that run only the arms of the Powerprop claims (P3, P5: GMP, RigL, Top-KAST at α = 1 and
#: α > 1), without the dense, static, SET and DSR rows that the method comparisons (G7, L1, L4, L6, L7) read
POWERPROP_ARMS_EXPERIMENTS = ("sparse_mnist5k",)
METHOD_COMPARISON_SKIP = STRUCTURED_SPARSE_EXPERIMENTS + POWERPROP_ARMS_EXPERIMENTS

MLP_SCALE = ("LeNet-300-100 on the default run's data (mnist5k: 5,000 real MNIST images, or the 8×8 digits) for a few "
             "thousand steps; the source: full MNIST (60,000), 50,000 steps")
SPARSE_SCALE = "LeNet-300-100 on the default run's small data; the source: ResNet-50 on ImageNet (and CIFAR-10)"
CNN_SCALE = "LeNet-5 on mnist5k (5,000 images); the report: their small CNN on full MNIST"
GRADFLOW_SCALE = "LeNet-300-100 on the default run's small data; the source: MNIST MLPs, CIFAR-10 and ImageNet ResNets"
LOTTERY_SCALE = "LeNet-300-100 on the default run's small data, three pruning levels; the sources: full MNIST, CIFAR-10"
PAI_SCALE = "LeNet-300-100 on the default run's small data; the sources: CIFAR-10/ImageNet VGG and ResNets"

#: gradient norms are compared as log ratios (scale-free: a smallest effect of 10% means the same on every net)
GRADIENT_NORM = {"kind": "gradflow", "table": "norms", "metric": "log(grad_norm)", "scale": 1.0, "unit_text": "log ratio",
                 "scale_note": GRADFLOW_SCALE}
DENSITY = {"metric": "near_zero_fraction", "metric_text": "fraction of |θ| below 0.1 × the layer's initial std", "unit_text": "pp"}

DECLARED: tuple[Claim, ...] = (
    # -- Powerpropagation ---------------------------------------------------------------------
    Claim("P1a", "Powerprop (α ∈ {1.25, 1.5, 2}) trains to the same accuracy as α = 1 (\"similar performance\")",
          f"{POWERPROP}, abstract and the MNIST weight-distribution figure; {NOTEBOOK}",
          kind="oneshot", metric="test_accuracy", treatment={"alpha": [1.25, 1.5, 2]}, baseline=NO_POWERPROP,
          where=UNPRUNED, split="alpha", test=EQUIVALENCE, margin=ACCURACY_MARGIN, skip_experiments=CNN_EXPERIMENTS,
          scale_note=MLP_SCALE,
          sentence=POWERPROP_ABSTRACT, quoted=True),
    Claim("P1b", "…but with markedly higher density at zero: a larger fraction of |θ| near zero than α = 1",
          f"{POWERPROP}, abstract (\"markedly higher density at zero\") and the MNIST weight-distribution figure",
          kind="oneshot", treatment={"alpha": [1.25, 1.5, 2]}, baseline=NO_POWERPROP, where=UNPRUNED, split="alpha",
          skip_experiments=CNN_EXPERIMENTS, scale_note=MLP_SCALE, **DENSITY,
          sentence=POWERPROP_ABSTRACT, quoted=True, min_effect=DENSITY_EFFECT),
    Claim("P2", "Powerprop (α > 1) keeps more test accuracy than α = 1 under one-shot magnitude pruning with ≤ 5% of the "
          "weights left", f"{POWERPROP}, MNIST one-shot pruning figure (LeNet-300-100, α ∈ {{1, …, 5}}); {NOTEBOOK}",
          kind="oneshot", metric="test_accuracy", treatment=POWERPROP_ALPHA, baseline=NO_POWERPROP,
          where={"evaluation": "oneshot", "target_sparsity": {">=": 0.95}}, skip_experiments=CNN_EXPERIMENTS,
          scale_note=MLP_SCALE,
          sentence=POWERPROP_ABSTRACT, quoted=True, min_effect=ACCURACY_EFFECT),
    Claim("P3", "Powerprop (the α > 1 chosen on validation accuracy) improves the test accuracy of sparse training at 90% "
          "sparsity and above", f"{POWERPROP}, sparse-training experiments, ImageNet ResNet-50 tables (GMP, RigL, Top-KAST ± Powerprop; "
          "published numbers in configs/published_results.csv)",
          kind="sparse_training", metric="test_accuracy", treatment=BEST_POWERPROP_ALPHA, baseline=NO_POWERPROP,
          where={"method": {"!=": "dense"}, "sparsity": {">=": 0.9}}, matched_on=("method", "variant", "sparsity"),
          skip_experiments=STRUCTURED_SPARSE_EXPERIMENTS,
          scale_note=SPARSE_SCALE,
          sentence=POWERPROP_SPARSE_TRAINING, quoted=True, min_effect=ACCURACY_EFFECT),
    Claim("P4", "EfficientPackNet with Powerprop fits more tasks into one network than with α = 1: higher test accuracy "
          "over all tasks, each with its own mask, once the whole sequence is learnt",
          f"{POWERPROP}, continual-learning experiments (EfficientPackNet); {STUDENT}, its Algorithm 1",
          kind="continual", metric="test_accuracy", treatment={"method": "efficient_packnet", **POWERPROP_ALPHA},
          baseline={"method": "efficient_packnet", **NO_POWERPROP}, where={"final": True, "variant": "default"},
          scale_note="permuted digits / mnist5k, a 100-unit MLP; the paper: permuted MNIST and others at full size",
          sentence=POWERPROP_CONTINUAL, quoted=True, min_effect=ACCURACY_EFFECT),
    Claim("P5", "Powerprop + gradual magnitude pruning beats GMP alone at high sparsity (≥ 90%)",
          f"{POWERPROP}, sparse-training experiments, the CIFAR-10 / ImageNet GMP ± Powerprop results",
          kind="sparse_training", metric="test_accuracy", treatment={"method": "gmp", **BEST_POWERPROP_ALPHA},
          baseline={"method": "gmp", **NO_POWERPROP}, where={"sparsity": {">=": 0.9}},
          matched_on=("variant", "sparsity"), skip_experiments=STRUCTURED_SPARSE_EXPERIMENTS,
          scale_note=SPARSE_SCALE,
          sentence=POWERPROP_SPARSE_TRAINING, quoted=True, min_effect=ACCURACY_EFFECT),
    Claim("P6", "Low-magnitude parameters are largely unaffected by learning: under Powerprop (α > 1) the initially small "
          "weights (the lowest quarter of |θ₀| in each layer) move less than at α = 1",
          f"{POWERPROP}, abstract (\"low-magnitude parameters are largely unaffected by learning\")", kind="oneshot",
          metric="small_weight_movement", treatment=POWERPROP_ALPHA, baseline=NO_POWERPROP, where=UNPRUNED,
          higher_is_better=False, skip_experiments=CNN_EXPERIMENTS, scale=1.0, unit_text="σ₀",
          metric_text="mean |θ − θ₀| / σ₀ of the initially small weights", scale_note=MLP_SCALE,
          sentence=POWERPROP_SMALL_WEIGHTS, quoted=True, min_effect=DISTANCE_EFFECT),
    # -- this harness's own questions (no source claims them) ------------------------------------
    Claim("H1a", "Does Powerprop's one-shot pruning advantage survive 2:4 structure? α > 1 (chosen on validation) keeps "
          "more test accuracy than α = 1 when every group of 4 consecutive inputs keeps its 2 largest |θ|",
          "this harness's own question (no source claims it); 2:4 as NVIDIA ASP's m4n2_1d (docs/structure.md)",
          kind="oneshot", table="structured", metric="test_accuracy", treatment=BEST_POWERPROP_ALPHA, baseline=NO_POWERPROP,
          where={"structure": "2:4"}, skip_experiments=CNN_EXPERIMENTS, scale_note=MLP_SCALE, min_effect=ACCURACY_EFFECT),
    Claim("H1b", "…and channel structure? α > 1 (chosen on validation) keeps more test accuracy than α = 1 when whole "
          "hidden units are pruned by their mean |θ| (≥ 90% of them removed)",
          "this harness's own question (no source claims it); channel structure as jaxpruner's Channel (docs/structure.md)",
          kind="oneshot", table="structured", metric="test_accuracy", treatment=BEST_POWERPROP_ALPHA, baseline=NO_POWERPROP,
          where={"structure": "channel", "target_sparsity": {">=": 0.9}}, skip_experiments=CNN_EXPERIMENTS,
          scale_note=MLP_SCALE, min_effect=ACCURACY_EFFECT),
    Claim("H2a", "Does Powerprop's sparse-training advantage survive 2:4 structure trained for? α > 1 (chosen on validation "
          "per method) reaches higher test accuracy than α = 1 with the same method under a 2:4 mask",
          "this harness's own question (no source claims it); configs/structured_sparse.yaml, docs/structure.md",
          kind="sparse_training", metric="test_accuracy", treatment=BEST_POWERPROP_ALPHA, baseline=NO_POWERPROP,
          where={"method": {"!=": "dense"}}, matched_on=("method", "variant", "sparsity"),
          experiments=("sparse_digits_2of4",), runs_with="configs/structured_sparse.yaml", scale_note=SPARSE_SCALE,
          min_effect=ACCURACY_EFFECT),
    Claim("H2b", "…and channel structure trained for (90 % of the weights removed in whole units)? α > 1 (chosen on "
          "validation per method) beats α = 1 with the same method",
          "this harness's own question (no source claims it); configs/structured_sparse.yaml, docs/structure.md",
          kind="sparse_training", metric="test_accuracy", treatment=BEST_POWERPROP_ALPHA, baseline=NO_POWERPROP,
          where={"method": {"!=": "dense"}}, matched_on=("method", "variant", "sparsity"),
          experiments=("sparse_digits_channel",), runs_with="configs/structured_sparse.yaml", scale_note=SPARSE_SCALE,
          min_effect=ACCURACY_EFFECT),
    # -- the student reproduction report ------------------------------------------------------
    Claim("S1", "α = 1.25 and 1.5 keep the accuracy of the MNIST MLP (equivalence with α = 1)",
          f"{STUDENT}, MNIST MLP experiments (accuracy per α)", kind="oneshot", metric="test_accuracy",
          treatment={"alpha": [1.25, 1.5]}, baseline=NO_POWERPROP, where=UNPRUNED, split="alpha", test=EQUIVALENCE,
          margin=ACCURACY_MARGIN, skip_experiments=CNN_EXPERIMENTS,
          scale_note="LeNet-300-100 (two hidden layers) on mnist5k; the report: a one-hidden-layer MLP on full MNIST"),
    Claim("S2", "The fraction of weights near zero grows with α (α ∈ {1, 1.25, 1.5, 2, 3})",
          f"{STUDENT}, weight histograms per α", kind="oneshot", trend="alpha",
          treatment={"alpha": {"<=": 3}}, where=UNPRUNED, skip_experiments=CNN_EXPERIMENTS, scale_note=MLP_SCALE,
          **{**DENSITY, "metric_text": "Spearman ρ of the near-zero fraction over α"},
          min_effect=RHO_EFFECT),
    Claim("S3a", "At large α (4) the weights move away from zero again: fewer |θ| near zero than at α = 3",
          f"{STUDENT}, weight histograms at α = 4 (two heaps)", kind="oneshot", treatment={"alpha": 4},
          baseline={"alpha": 3}, where=UNPRUNED, higher_is_better=False, skip_experiments=CNN_EXPERIMENTS,
          scale_note=MLP_SCALE, **DENSITY,
          min_effect=DENSITY_EFFECT),
    Claim("S3b", "…split into two heaps: θ is more bimodal at α = 4 than at α = 3 (Sarle's bimodality coefficient of "
          "θ / initial std)", f"{STUDENT}, weight histograms at α = 4 (two heaps)", kind="oneshot", metric="bimodality",
          treatment={"alpha": 4}, baseline={"alpha": 3}, where=UNPRUNED, skip_experiments=CNN_EXPERIMENTS,
          scale=1.0, unit_text="BC", metric_text="bimodality coefficient of θ", scale_note=MLP_SCALE,
          min_effect=BIMODALITY_EFFECT),
    Claim("S4", "Powerprop's effect weakens in deeper layers of the CNN: the near-zero fraction grows more (α = 2 vs α = 1) "
          "in the first layer than in the last", f"{STUDENT}, MNIST CNN experiment, per-layer weight histograms",
          kind="oneshot", metric="near_zero_first_layer - near_zero_last_layer", treatment={"alpha": 2},
          baseline=NO_POWERPROP, where=UNPRUNED, experiments=(CNN_EXPERIMENT,), scale_note=CNN_SCALE, unit_text="pp",
          metric_text="near-zero fraction (|θ| < 0.1 × the layer's initial std), first layer minus last layer",
          min_effect=DENSITY_EFFECT),
    Claim("S5", "A CNN on MNIST trains at least as well with Powerprop (α = 2) as with α = 1 (their 0.99 vs 0.98)",
          f"{STUDENT}, MNIST CNN experiment (and its per-layer weight histograms)", kind="oneshot",
          metric="test_accuracy", treatment={"alpha": 2}, baseline=NO_POWERPROP, where=UNPRUNED,
          margin=ACCURACY_MARGIN, experiments=(CNN_EXPERIMENT,), scale_note=CNN_SCALE),
    Claim("S6", "The one-shot pruning advantage of Powerprop also holds for that CNN (≤ 5% of the weights left)",
          f"{STUDENT}, MNIST CNN pruning experiment", kind="oneshot", metric="test_accuracy", treatment=POWERPROP_ALPHA,
          baseline=NO_POWERPROP, where={"evaluation": "oneshot", "target_sparsity": {">=": 0.95}},
          experiments=(CNN_EXPERIMENT,), scale_note=CNN_SCALE,
          min_effect=ACCURACY_EFFECT),
    Claim("S5c", "Their five-layer CIFAR-10 CNN trains better with Powerprop (0.58 vs 0.50)",
          f"{STUDENT}, CIFAR-10 CNN experiment", kind="oneshot", metric="test_accuracy", treatment=POWERPROP_ALPHA,
          baseline=NO_POWERPROP, where=UNPRUNED, experiments=(CIFAR_CNN_EXPERIMENT,), runs_with="configs/cifar10_cnn.yaml",
          scale_note="CIFAR-10 from your copy (not in the embedded data); our five-layer CNN is the TensorFlow CNN "
                     "tutorial's (bench_powerprop/models/convnet.py): the report's layer sizes are not known here",
          min_effect=ACCURACY_EFFECT),
    Claim("S7", "EfficientPackNet with α = 1.5 is (marginally) better than α = 1 on 3 permuted-MNIST tasks at one "
          "sparsity rate 0.2", f"{STUDENT}, EfficientPackNet on permuted MNIST", kind="continual",
          metric="test_accuracy", treatment={"method": "efficient_packnet", "alpha": 1.5},
          baseline={"method": "efficient_packnet", **NO_POWERPROP}, where={"final": True, "variant": "default"},
          experiments=("continual_mnist_epn",), scale_note="3 permuted mnist5k tasks; the report: full permuted MNIST",
          min_effect=ACCURACY_EFFECT),
    Claim("S9", "EfficientPackNet reuses weights and needs fewer new ones than PackNet: after the whole task sequence its "
          "tasks' masks together cover fewer of the network's weights (α = 1)",
          f"{STUDENT}, EfficientPackNet (Algorithm 1) against PackNet", kind="continual", metric="capacity_total",
          treatment={"method": "efficient_packnet", **NO_POWERPROP}, baseline={"method": "packnet", **NO_POWERPROP},
          where={"final": True, "variant": "default"}, higher_is_better=False, experiments=("continual_digits",),
          metric_text="fraction of all weights in the union of the tasks' masks after the last task",
          scale_note="10 permuted digits tasks, a 100-unit MLP; the report: permuted MNIST",
          min_effect=DENSITY_EFFECT),
    Claim("S10", "Re-initialising the weights no task uses helps EfficientPackNet: higher test accuracy over all tasks than "
          "leaving them as training left them (α = 1)", f"{STUDENT}, EfficientPackNet (Algorithm 1, the re-initialisation "
          "step)", kind="continual", metric="test_accuracy", treatment={"method": "efficient_packnet", "variant": "default"},
          baseline={"method": "efficient_packnet", "variant": "no_reinit"}, where={"final": True, **NO_POWERPROP},
          experiments=("continual_mnist_epn",), scale_note="3 permuted mnist5k tasks; the report: full permuted MNIST",
          min_effect=ACCURACY_EFFECT),
    Claim("S8", "Adaptive α (the report's controller, from α = 1.5) gives sparser weights than the same α kept fixed: "
          "a larger fraction of effective weights with |θ| < ε at the end of training",
          f"{STUDENT}, section 'Adaptive Tuning of α'", kind="adaptive_alpha", table="trace",
          metric="fraction_below_epsilon", treatment={"variant": "default", "alpha": 1.5},
          baseline={"variant": "fixed", "alpha": 1.5}, where={"final": True}, metric_text="fraction of |θ| < ε",
          scale_note=MLP_SCALE,
          min_effect=DENSITY_EFFECT),
    # -- gradient flow and lottery tickets (Evci et al.) ---------------------------------------
    Claim("G1", "A sparse network with a dense-style initialisation has weaker gradient flow at initialisation than the "
          "dense network", f"{EVCI}, abstract and the analysis of gradient flow at initialisation (static sparse vs dense)",
          treatment={"method": "static", "variant": "default"}, baseline={"method": "dense"},
          where={"alpha": 1, "step": 0}, higher_is_better=False, metric_text="log gradient norm at step 0", **GRADIENT_NORM,
          sentence=EVCI_INIT, quoted=True, min_effect=GRADIENT_LOG_MARGIN),
    Claim("G2", "Sparse-aware initialisation improves the gradient flow of static sparse training",
          f"{EVCI}, sparsity-aware initialisation; official code github.com/google-research/rigl "
          "rigl/rigl_tf2/init_utils.py::unit_scaled_init",
          treatment={"method": "static", "variant": "sparse_init"}, baseline={"method": "static", "variant": "default"},
          where={"alpha": 1, "step": {"<=": 100}}, metric_text="log gradient norm over the first 100 steps", **GRADIENT_NORM,
          sentence=EVCI_INIT, quoted=True, min_effect=GRADIENT_LOG_MARGIN),
    Claim("G3", "Dynamic sparse training (RigL, SET) improves gradient flow during training over static sparse training",
          f"{EVCI}, abstract and the analysis of gradient flow during training (DST vs static)",
          treatment=({"method": "rigl"}, {"method": "set"}), baseline={"method": "static", "variant": "default"},
          where={"alpha": 1, "step": {">": 0}}, metric_text="log gradient norm during training (step > 0)", **GRADIENT_NORM,
          sentence=EVCI_DST, quoted=True, min_effect=GRADIENT_LOG_MARGIN),
    Claim("G4", "Lottery tickets do not improve gradient flow at initialisation over a random initialisation of the same "
          "mask: the ticket's gradient norm at step 0 is not above that of GMP's mask on fresh weights (within 10%)",
          f"{EVCI}, abstract (\"LTs do not improve gradient flow\") and §4 (LT vs scratch: the pruning mask on a random "
          "initialisation; github.com/google-research/rigl rigl_tf2/mlp_configs/scratch.gin)",
          treatment={"method": "static", "variant": "ticket"}, baseline={"method": "lottery_reinit", "variant": "default"},
          where={"alpha": 1, "step": 0}, higher_is_better=False, margin=GRADIENT_LOG_MARGIN,
          **{**GRADIENT_NORM, "metric_text": "log gradient norm at step 0"},
          sentence=EVCI_TICKETS, quoted=True),
    Claim("G5a", "Lottery tickets re-learn their pruning solution: the ticket's trained θ is closer (L2) to the solution "
          "it was pruned from than a scratch solution (the same mask on a random initialisation)",
          f"{EVCI}, §4 (distance to the pruning solution; scratch: rigl_tf2/mlp_configs/scratch.gin)", kind="lottery",
          table="solutions", metric="theta_distance", treatment={"method": "lottery", "variant": "default"},
          baseline={"method": "lottery_reinit", "variant": "default"}, where={"alpha": 1},
          higher_is_better=False, scale=1.0, unit_text="rel. L2", metric_text="relative L2 distance of θ to the pruning solution",
          scale_note=LOTTERY_SCALE,
          sentence=EVCI_TICKETS, quoted=True, min_effect=DISTANCE_EFFECT),
    Claim("G5b", "…and disagree less with it in their test predictions", f"{EVCI}, the lottery-ticket analysis (prediction disagreement)",
          kind="lottery", table="solutions", metric="disagreement", treatment={"method": "lottery", "variant": "default"},
          baseline={"method": "lottery_reinit", "variant": "default"}, where={"alpha": 1},
          higher_is_better=False, metric_text="test-set prediction disagreement with the pruning solution",
          scale_note=LOTTERY_SCALE,
          sentence=EVCI_TICKETS, quoted=True, min_effect=DISAGREEMENT_EFFECT),
    Claim("G6", "…at the cost of novel solutions: an ensemble of two tickets of one pruning solution (two batch orders) "
          "gains less over its members than an ensemble of two scratch solutions of the same mask",
          f"{EVCI}, §4 (ensembles: \"at the cost of learning novel solutions\")", kind="lottery", table="ensembles",
          metric="ensemble_gain", treatment={"method": "lottery", "variant": "default"},
          baseline={"method": "lottery_reinit", "variant": "default"}, where={"alpha": 1, "level": {">=": 1}},
          higher_is_better=False, metric_text="two-member ensemble gain in test accuracy (one pair per seed and level)",
          scale_note=LOTTERY_SCALE,
          sentence=EVCI_TICKETS, quoted=True, min_effect=ENSEMBLE_EFFECT),
    Claim("G7", "Static sparse training (a random mask from initialisation) generalises significantly worse than dense "
          "training", f"{EVCI}, §1", kind="sparse_training", metric="test_accuracy",
          treatment={"method": "dense"}, baseline=tuple({"method": "static", "sparsity": sparsity} for sparsity in (0.95, 0.99)),
          where={"alpha": 1, "variant": "default"}, scale_note=SPARSE_SCALE, skip_experiments=METHOD_COMPARISON_SKIP,
          sentence=EVCI_STATIC, quoted=True, min_effect=ACCURACY_EFFECT),
    Claim("G8", "Sparse-aware initialisation improves the test accuracy of static sparse training, not only its gradient "
          "flow", f"{EVCI}, sparsity-aware initialisation (static sparse training with the initialisation scaled by each "
          "unit's active fan-in)", kind="gradflow", metric="test_accuracy",
          treatment={"method": "static", "variant": "sparse_init"}, baseline={"method": "static", "variant": "default"},
          where={"alpha": 1}, scale_note=GRADFLOW_SCALE,
          sentence=EVCI_INIT, quoted=True, min_effect=ACCURACY_EFFECT),
    Claim("LTH", "Lottery tickets (the iterative-magnitude-pruning mask with the original initialisation) beat random "
          "re-initialisation at the same mask", "Frankle & Carbin: The Lottery Ticket Hypothesis, ICLR 2019 "
          "(arXiv:1803.03635), Sec. 2, LeNet-300-100 on MNIST", kind="lottery", metric="test_accuracy",
          treatment={"method": "lottery", "variant": "default"}, baseline={"method": "lottery_reinit", "variant": "default"},
          where={"alpha": 1, "level": {">=": 1}}, scale_note=LOTTERY_SCALE,
          sentence=LTH_ABSTRACT, quoted=True, min_effect=ACCURACY_EFFECT),
    # -- the lecture (Price) -------------------------------------------------------------------
    Claim("L1", "Well-tuned gradual magnitude pruning is hard to beat (Gale et al. 2019): GMP at least as accurate as every "
          "other sparse method at the same sparsity and budget", f"{PRICE}, 'pruning during training' (Gale et al. 2019)",
          kind="sparse_training", metric="test_accuracy", treatment={"method": "gmp"},
          baseline=tuple({"method": method} for method in ("rigl", "set", "static", "topkast", "dsr")),
          where={"alpha": 1, "variant": "default", "sparsity": {">": 0}}, matched_on=("sparsity",),
          margin=ACCURACY_MARGIN, skip_experiments=METHOD_COMPARISON_SKIP, scale_note=SPARSE_SCALE),
    Claim("L2", "Winning tickets: the IMP mask with the original initialisation matches the dense network's accuracy down "
          "to some sparsity (the sparsest level where it holds is in the note)",
          f"{PRICE}, 'lottery tickets' (Frankle & Carbin 2019)", kind="lottery", metric="test_accuracy",
          treatment={"method": "lottery", "variant": "default", "level": {">=": 1}},
          baseline={"method": "lottery", "variant": "default", "level": 0}, where={"alpha": 1}, split="level",
          combine="any", test=EQUIVALENCE, margin=ACCURACY_MARGIN, scale_note=LOTTERY_SCALE,
          pick_on="val_accuracy"),
    Claim("L3", "After pruning at initialisation, shuffling the kept positions within each layer trains to the same "
          "accuracy (Frankle et al. 2021)", f"{PRICE}, 'pruning at initialisation' (Frankle et al. 2021, 'Missing the mark')",
          kind="pai", metric="test_accuracy",
          treatment=tuple({"variant": scorer} for scorer in SHUFFLED_SCORERS),
          baseline=tuple({"variant": f"{scorer}_shuffled"} for scorer in SHUFFLED_SCORERS),
          where={"method": "pai", "alpha": 1}, matched_on=("sparsity",), split="sparsity", test=EQUIVALENCE, margin=ACCURACY_MARGIN,
          scale_note=PAI_SCALE),
    Claim("L3b", "…and so does re-initialising the shuffled network's weights (Frankle et al. 2021's second control)",
          f"{PRICE}, 'pruning at initialisation' (Frankle et al. 2021)", kind="pai", metric="test_accuracy",
          treatment=tuple({"variant": scorer} for scorer in SHUFFLED_SCORERS),
          baseline=tuple({"variant": f"{scorer}_shuffled_reinit"} for scorer in SHUFFLED_SCORERS),
          where={"method": "pai", "alpha": 1}, matched_on=("sparsity",), split="sparsity", test=EQUIVALENCE, margin=ACCURACY_MARGIN,
          scale_note=PAI_SCALE),
    Claim("L4", "Among dynamic sparse training methods RigL ≥ SET ≥ static", f"{PRICE}, 'dynamic sparse training' "
          "(Evci et al. 2020, RigL)", kind="sparse_training", metric="test_accuracy",
          order=({"method": "rigl"}, {"method": "set"}, {"method": "static"}),
          where={"alpha": 1, "variant": "default", "sparsity": {">": 0}}, matched_on=("sparsity",),
          skip_experiments=METHOD_COMPARISON_SKIP,
          scale_note=SPARSE_SCALE,
          margin=ACCURACY_MARGIN),
    Claim("L5", "SNIP, GraSP and SynFlow beat random pruning at initialisation at high sparsity (98%)",
          f"{PRICE}, 'pruning at initialisation'", kind="pai", metric="test_accuracy",
          treatment=tuple({"variant": scorer} for scorer in ("snip", "grasp", "synflow")), baseline={"variant": "random"},
          where={"method": "pai", "alpha": 1, "sparsity": 0.98}, scale_note=PAI_SCALE,
          harness_check=True, min_effect=ACCURACY_EFFECT),
    Claim("L7", "Sparsifying can even improve performance: the best sparse method at 95% sparsity (chosen on validation "
          "accuracy) is more accurate than the dense network", f"{PRICE} (\"sparsifying can even improve "
          "performance\")", kind="sparse_training", metric="test_accuracy",
          treatment={"method": {"!=": "dense", "best": "val_accuracy"}, "sparsity": 0.95}, baseline={"method": "dense"},
          where={"alpha": 1, "variant": "default"}, scale_note=SPARSE_SCALE, skip_experiments=METHOD_COMPARISON_SKIP,
          min_effect=ACCURACY_EFFECT),
    Claim("L6", "20× to even 100× compression without sacrificing much performance: the best sparse method (chosen on "
          "validation accuracy) within 1 pp of dense, one row per sparsity from 80% (5×) to 99% (100×)",
          f"{PRICE}, introduction", kind="sparse_training", metric="test_accuracy",
          treatment=tuple({"method": {"!=": "dense", "best": "val_accuracy"}, "sparsity": sparsity}
                          for sparsity in COMPRESSION_AXIS),
          baseline={"method": "dense"}, where={"alpha": 1, "variant": "default"}, margin=ACCURACY_MARGIN,
          skip_experiments=METHOD_COMPARISON_SKIP, scale_note=SPARSE_SCALE),
)



def with_worst_case(claim: Claim) -> Claim:
    """An accuracy claim counts a diverged run that reached no finite accuracy at chance (issue 28: diverged runs are
    outcomes, never silently left out); a row that declares its own ``diverged_as`` keeps it."""
    if claim.diverged_as is None and claim.metric in ("test_accuracy", "val_accuracy"):
        return replace(claim, diverged_as=CHANCE_ACCURACY)
    return claim


CLAIMS: tuple[Claim, ...] = tuple(map(with_worst_case, DECLARED))
