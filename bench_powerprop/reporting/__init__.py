"""One reporting layer for every pipeline shape.

``rows`` (tidy rows with one documented column schema) → ``summaries`` (mean ± std over seeds,
diverged and collapsed counts) → ``tables`` and ``figures`` → ``reports``: one report spec per
pipeline kind naming which tables and figures it writes. ``labels`` holds the words every table
and figure uses; ``published`` the published numbers and how they are matched to our cells.
"""
