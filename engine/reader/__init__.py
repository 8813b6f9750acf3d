"""Reading code from screenshots: the picture's layout (lines, indentation, blank lines from
geometry), a small CTC line reader on the vision stem, and the decode that turns both into text.
"""
