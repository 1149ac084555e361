# Sourced by the cluster scripts: the records of the processes they start, and the check that
# a folder is a test cluster's state before anything in it is stopped or removed.
#
# $state/pids holds "name pid start" lines. `start` is the process's start time (clock ticks
# since boot, /proc/PID/stat field 22): a PID the kernel has since given to another process
# has another start time, and is never signalled.

# The start time of PID, or nothing when it is gone.
started_at() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  # The command name (field 2) may hold spaces; fields are counted after its closing paren.
  stat=${stat##*) }
  # shellcheck disable=SC2086
  set -- $stat
  echo "${20}"
}

# Appends the record of a process just started.
record() { # name pid
  echo "$1 $2 $(started_at "$2")" >>"$state/pids"
}

# True when PID is still the process recorded with START.
recorded() { # pid start
  [ -n "${2:-}" ] && [ "$(started_at "$1")" = "$2" ]
}

# The mark `up` leaves in a state folder it made: `down` and `up` remove only a folder that
# has it (KUBECTL_RAILS_CLUSTER_STATE=$HOME must never mean `rm -rf $HOME`).
state_mark=.kubectl-rails-cluster

is_state_folder() { # folder
  local dir
  dir=$(realpath -m -- "$1")
  case "$dir" in / | /tmp | /var | /var/tmp | /root | /home | "$(realpath -m -- "${HOME:-/}")") return 1 ;; esac
  [ -f "$dir/$state_mark" ]
}
