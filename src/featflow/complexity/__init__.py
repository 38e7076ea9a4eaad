"""The complexity branch (SPEC 1): specs and the stage functions its rules call."""
