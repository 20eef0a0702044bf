"""``lottery_reinit``: the random-reinitialisation control of a lottery ticket (Frankle & Carbin 2019, §2, §5):
the ticket's exact mask (``mask_from`` the ``lottery`` cell of the same level) on fresh random weights.

See ``bench_powerprop/methods/_controls.py`` for the fresh draw and the references; the ``init`` option
(``dense`` by default: a new draw of the model's own initialiser) applies once the mask is installed.
"""

from bench_powerprop.methods._controls import FreshWeightsControl
from bench_powerprop.methods.base import METHODS
from bench_powerprop.methods.static import StaticOptions


@METHODS.register("lottery_reinit", options=StaticOptions)
class LotteryReinit(FreshWeightsControl):
    pass
