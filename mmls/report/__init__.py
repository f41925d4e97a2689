"""What the pipeline tells a reader: Tables 2-4 and CV tables, collected results, the Markdown
report and its figures.
"""
