"""The customer-success KPIs managers are judged on, per calendar month and segment, computed in the warehouse.

- `definitions`: every KPI declared once (name, formula, sources, unit, which way is better); `docs/KPIS.md`,
  the table's `kpi` names and the report's labels all come from it
- `config`: the `kpis:` settings (gross margin, time-to-value days, the breakdown column)
- `months`: the calendar months the data supports, which of them are settled for churn, and the segments
- `revenue`: MRR on month boundaries, MRR movements, logo and revenue churn, retention, ARPU, lifetime value
- `experience`: NPS, CSAT, CES, first-contact resolution, resolution time
- `usage`: stickiness, seats in use, core-feature depth
- `ttv`: time-to-value cohort curves and medians, churn by time-to-first-value quartile
- `table`: the KPIs the warehouse can give, joined into one long table (month, segment, kpi, value, numerator,
  denominator)
"""
