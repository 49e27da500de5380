"""Running slim's programs from the tools (frontier, zoo): one command, its
output into a log file, a failure raised with the command's error line."""
import shlex
import subprocess


class StepFailed(Exception):
    pass


def run(cmd, log, env=None):
    """Runs cmd with stdout and stderr into log (the command on its first
    line); returns stdout. A non-zero exit raises StepFailed naming the
    program, the exit status, the output's last error line (else its last
    line) and the log."""
    with open(log, "w") as f:
        f.write("$ %s\n" % " ".join(shlex.quote(c) for c in cmd))
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    with open(log, "a") as f:
        f.write(p.stdout)
        f.write(p.stderr)
    if p.returncode != 0:
        lines = [l for l in (p.stderr + p.stdout).splitlines() if l.strip()]
        errs = [l for l in lines if "error" in l or "FAIL" in l]
        why = (errs or lines or ["no output"])[-1]
        name = cmd[0].rsplit("/", 1)[-1]
        if len(cmd) > 1 and not cmd[1].startswith("-"):
            name += " " + cmd[1]
        raise StepFailed("%s exited %d: %s (log %s)" % (name, p.returncode, why.strip(), log))
    return p.stdout
