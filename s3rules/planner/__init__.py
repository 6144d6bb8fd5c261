"""What to run and why: targets -> job graph -> pending jobs with a reason each.

A job exists once per (rule, wildcard values). Each input path is matched against the rules'
output patterns to find its producer; no producer means a source file. Pure except for
batched ``Storage`` calls. In the order a plan is made:

- ``recipes``: what is worked out once per rule and once per rule pair, so that the same
  input-to-output match is not redone for every sample-sheet row;
- ``jobs``: ``Planner``, which makes each job once and finds the producer of each input;
- ``targets``: rule names and paths typed on the command line -> jobs (a part of ``Planner``);
- ``graph``: every job below the targets, linked and in dependency order;
- ``pending``: ``plan()`` and ``Plan``: targets, --force, existence, reasons, --until, sources;
  with ``temp`` (missing temp() outputs no pending job needs), ``checkpoints`` (jobs that wait
  for a ``lines()`` file a rule makes) and ``resources`` (settings read per job, checked).
"""
from .jobs import Planner
from .pending import FORCED, INCOMPLETE, MISSING, REASONS, STALE, UPSTREAM, Plan, plan

__all__ = ["plan", "Plan", "Planner", "REASONS", "MISSING", "INCOMPLETE", "FORCED", "STALE", "UPSTREAM"]
