"""``lottery_reinit``: the random-reinitialisation control of a lottery ticket (Frankle & Carbin 2019, §2, §5):
the ticket's exact mask (``mask_from`` the ``lottery`` cell of the same level, or any cell whose final mask is
the ticket's, e.g. GMP's in ``gradflow_digits``) on fresh random weights. This is also Evci et al. (2022, §4)'s
"scratch" control: google-research/rigl ``rigl_tf2/mlp_configs/scratch.gin`` loads the pruning solution's mask
(``mask_init_path``, ``shuffle_mask = False``) and draws fresh weights (no ``weight_init_path``).

See ``bench_powerprop/methods/_controls.py`` for the fresh draw and the references; the ``init`` option
(``dense`` by default: a new draw of the model's own initialiser) applies once the mask is installed.
"""

from bench_powerprop.methods._controls import ControlOptions, FreshWeightsControl, replicate_suffix
from bench_powerprop.methods._init import init_suffix
from bench_powerprop.methods.base import METHODS


@METHODS.register("lottery_reinit", options=ControlOptions)
class LotteryReinit(FreshWeightsControl):
    @classmethod
    def report_label(cls, options):
        return "random reinit (same mask)" + init_suffix(options) + replicate_suffix(options)
