"""Statistics: question-vs-answer significance tests and inter-rater agreement (stats_report)."""
