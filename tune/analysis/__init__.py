"""Analysis: a sweep's stored records turned into numbers: the comparison table (`comparison`), costs
(`cost`, `cost_columns`), the Pareto front (`stats`), statistics over seeds and pairs (`significance`) and what the
search learned (`search_insights`). Imports sweep/ and the engine; never report/."""
