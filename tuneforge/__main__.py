"""`python -m tuneforge` = the `tuneforge` command."""

from tuneforge.cli import main

main()
