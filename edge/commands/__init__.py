"""Sub-commands of ``storeedge``, one file per group."""
