"""Reports on result tables: the plots a person would rather look at than read."""
