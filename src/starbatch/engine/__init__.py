"""The batching engine: task tables and their validation, parameters, data-product
declarations, planning (engine/plan/), the batch runner and its supervised worker,
result tables, atomic writes and the flag bits. It imports no analysis: what needs the
analyses takes a registry ({name: Analysis subclass}) as an argument. Its only physics
is vocabulary: the flag bits every analysis shares (flags.py names GRID_EDGE, POOR_FIT,
LOW_SNR, OFF_BEST_FIT and NOT_COOL_STAR for the label analyses, so that one table of bits
serves every result file)."""
