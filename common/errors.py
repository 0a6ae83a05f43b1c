"""The exceptions the CLI turns into a clean message and a non-zero exit, without a traceback."""


class UserError(Exception):
    """Bad input a user can fix (unknown key, missing dataset, locked run dir, ...).

    The message is a complete paragraph: what is wrong and what to do about it.
    The CLI prints it without a traceback and exits with status 2.
    """


class Preempted(Exception):
    """A run stopped on Slurm's warning signal (SIGUSR1) after saving its last checkpoint.

    Not a failure: its summary stays 'running', and running the same command again (the requeued job
    does) resumes from that checkpoint. The CLI asks Slurm to requeue the job and exits with status 75.
    """
