"""The report: report.html and the comparison files rebuilt from a sweep's folder (`write`), the page
(`page`, templates/), one module per section (cost, statistics, calibration, robustness, errors, search, timeline)
and what they share (`figures`, `words`). The last room of tune/: it may import any other."""
