"""One module per scenario: what it runs and the section of the results file it writes."""
