"""Tests of the capture analysis, the chart, the capture generator and Azurite (``tests/analysis``)."""
