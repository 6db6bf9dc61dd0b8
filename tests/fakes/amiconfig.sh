#!/bin/sh
# Stand-in for CernVM's `amiconfig.sh user` (hepix/commands/amiconfig.sh), as
# far as the guard matters: the user step is skipped when user.done exists;
# otherwise it runs the user-data's #! script and amiconfig, then touches
# user.done. Paths: AMI_DONE_USER, AMICONFIG (the amiconfig to run),
# LEGACY_EVENTS (a line "legacy" per run of the user step).
done_file=${AMI_DONE_USER:-/var/lib/amiconfig/user.done}
[ "$1" = user ] || { echo "Usage: amiconfig.sh [user|hepix]"; exit 2; }
if [ -e "$done_file" ]; then
    echo "Contextualization for user already run, skipping (force with --force)"
    exit 0
fi
echo legacy >>"${LEGACY_EVENTS:-/dev/null}"
"${AMICONFIG:-/usr/sbin/amiconfig}"
mkdir -p "$(dirname "$done_file")"
touch "$done_file"
