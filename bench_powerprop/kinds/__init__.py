"""Experiment kinds, one module each (found by ``bench_powerprop.pipelines.PIPELINES``; torch-free at import).

A module declares ``KIND = Pipeline(...)``: the kind's outputs, what its rules read, how the report shows
them, its table titles, its writers by ``"module:function"`` name and its tiny example experiment; a
module may instead (or also) declare ``FIGURES = (Figure(...),)`` to add figures to an existing kind.
Its captions are ``workflow/report/<caption>.rst``. See docs/extending.md.
"""
