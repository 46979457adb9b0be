"""The report stage (stage): statistics, figures and rendering of the comparison."""
