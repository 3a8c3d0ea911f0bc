"""The CS managers' report: one self-contained HTML page (plots embedded, inline CSS and JS, no network) on who is
at risk, how much MRR, why in words, what to do, what changed since the previous scoring and how good the model is;
plus the at-risk list as Markdown and CSV for tools that import files.

Everything here takes frames and facts as arguments; the report stage gathers them (pipelines/report_run.py).

- `inputs`: what the stage fills (ReportInputs, with the model's facts and the portfolio's explanations)
- `tables`: what the report computes from the scores and drivers (at-risk list, headline, tier changes, breakdowns)
- `accounts`: one section per listed account, with its waterfall
- `plots`: the portfolio plots (PNG)
- `formatting`: how money, probabilities and changes read in the page and the exports
- `render`: the HTML page; `exports`: the at-risk list as CSV and Markdown
"""
