"""The reserved names a script run writes into its run (hidden from users like every
``runbridge.*`` name), shared by the submitter, the supervisor, the waiter and `Run.get_details`."""

from ..records import RESERVED_PREFIX

#: The run file holding the script's output (stdout and stderr, as they came).
STD_LOG = "user_logs/std_log.txt"
#: The run file holding the zip of ``source_directory``.
SNAPSHOT_FILE = RESERVED_PREFIX + "snapshot.zip"
#: Reserved property: the local file the running script's output is teed into.
LOG_PATH_PROPERTY = RESERVED_PREFIX + "log_path"
#: Reserved property: ``<host>:<pid>`` of the supervisor, so a waiter elsewhere sees it die.
SUPERVISOR_PROPERTY = RESERVED_PREFIX + "supervisor"
#: Reserved tag: the script's exit code (a negative number: killed by that signal).
EXIT_CODE_TAG = RESERVED_PREFIX + "exit_code"
