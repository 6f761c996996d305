# Sourced by setup.sh and test.sh. rustup installs into ~/.cargo/bin, which a non-login
# shell (a CI runner, sudo, cron) may not have on its PATH.
if [ -d "${HOME:-/root}/.cargo/bin" ]; then
    case ":$PATH:" in *":${HOME:-/root}/.cargo/bin:"*) ;; *) PATH=${HOME:-/root}/.cargo/bin:$PATH ;; esac
    export PATH
fi
