"""The command line and the OCI runtime (docs/architecture.md, "The OCI runtime")."""


class OneLineError(Exception):
    """A verb's refusal whose message is the one line the engine shows its user: the CLI
    catches this one base, so it need not import every module that may raise one."""
