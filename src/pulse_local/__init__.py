"""pulse-local: the Pulse Analytics pipeline, local-first."""

import warnings

# The Bigtable client warns on every emulator connection; on the local profile that is expected.
warnings.filterwarnings("ignore", message="Connecting to Bigtable emulator", category=RuntimeWarning)
