"""`farl doctor`: is this PC ready to run the stack (sim) or the real arm (real)?

facts.py reads the system once; checks.py turns those facts into PASS/WARN/FAIL
lines with the fix; command.py is the CLI. The checks never read the system
themselves, so tests give them facts for every pass and every failure.
"""
