"""The workflow model: templates and path patterns, rules and workflows, jobs.

Plain data plus the string work that planning does millions of times; the loader
(``s3rules.language``) builds it, and every later layer reads it.
"""
from .jobs import (STRICT_SHELLS, Job, ShellList, directories_of, format_number, grouped, resource_value,
                   shell_quote)
from .rules import Binding, Condition, InputSpec, ListVariable, Rule, Workflow
from .templates import (Pattern, Placeholder, Template, TemplateSyntaxError, escape_braces, is_url,
                        resolve_path, segment_problem)

__all__ = ["Binding", "Condition", "InputSpec", "Job", "ListVariable", "Pattern", "Placeholder", "Rule",
           "STRICT_SHELLS", "ShellList", "Template", "TemplateSyntaxError", "Workflow", "directories_of", "escape_braces",
           "format_number", "grouped", "is_url", "resource_value", "resolve_path", "segment_problem",
           "shell_quote"]
