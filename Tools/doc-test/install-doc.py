#!/usr/bin/python3
"""Runs docs/configuration.md's "Install on two hosts" as written (issue 26, 10).

Every fenced block of that section whose info string is `sh host=H` runs with `bash -e -o
pipefail`: H=build here, in the repository (as `make package` would on a build machine, with
CONFIGURATION=debug: the debug build is already there, a release one would cost minutes);
H=primary, secondary or both in two network namespaces (192.0.2.1 and 192.0.2.2 on a veth
pair), each with its own /etc, /usr, /var and /root (overlays on a tmpfs), so the package
installs into each "host" apart and nothing reaches this machine's own. systemctl, journalctl
and scp are stand-ins (Tools/doc-test/shims): systemd does not run here.

The package the build block made is checked by Tools/package/verify-package.sh (its files, the
conffile, and `systemd-analyze verify` of its unit). A block that fails fails the run; so do a failover the doc's clients did not survive and a pair
that does not end healthy with the primary serving. Everything made is removed at the end:
processes, namespaces, mounts, the package file if this run made it. Ends with one line:
  install-doc blocks=N seconds=S result=ok|failed
"""
import json, os, re, shutil, signal, subprocess, sys, tempfile, time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOC = os.path.join(REPO, "docs", "configuration.md")
SHIMS = os.path.join(REPO, "Tools", "doc-test", "shims")
HOSTS = {"primary": "192.0.2.1", "secondary": "192.0.2.2"}
TAG = str(os.getpid() % 100000)


def blocks():
    text = open(DOC).read()
    start = text.index("## Install on two hosts")
    end = text.index("\n## ", start + 10)
    found = re.findall(r"```sh host=(\w+)\n(.*?)```", text[start:end], re.S)
    if not found:
        sys.exit("install-doc: no `sh host=...` blocks in the section")
    return found


def run(argv, **kwargs):
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kwargs)


class Hosts:
    def __init__(self):
        self.work = tempfile.mkdtemp(prefix="vcomdoc.", dir="/tmp")
        self.namespaces = {h: f"vcomdoc-{h[0]}-{TAG}" for h in HOSTS}
        self.holders = {}
        self.mounted = False

    def up(self):
        # Overlay upper directories must not be on an overlay (a container's root often is).
        run(["mount", "-t", "tmpfs", "-o", "size=4g", "tmpfs", self.work])
        self.mounted = True
        os.makedirs(f"{self.work}/holders")
        for host, ns in self.namespaces.items():
            run(["ip", "netns", "add", ns])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        a, b = f"vdp{TAG}", f"vds{TAG}"
        run(["ip", "link", "add", a, "type", "veth", "peer", "name", b])
        for host, link in (("primary", a), ("secondary", b)):
            ns = self.namespaces[host]
            run(["ip", "link", "set", link, "netns", ns])
            run(["ip", "-n", ns, "addr", "add", f"{HOSTS[host]}/24", "dev", link])
            run(["ip", "-n", ns, "link", "set", link, "up"])
        for host, ns in self.namespaces.items():
            base = f"{self.work}/{host}"
            script = []
            for d in ("etc", "usr", "var", "root"):
                os.makedirs(f"{base}/upper/{d}")
                os.makedirs(f"{base}/work/{d}")
                script.append(f"mount -t overlay overlay -o lowerdir=/{d},upperdir={base}/upper/{d},workdir={base}/work/{d} /{d}")
            os.makedirs(f"{base}/state")
            # A process that holds the host's mount namespace for the run; blocks join it.
            holder = subprocess.Popen(
                ["ip", "netns", "exec", ns, "unshare", "--mount", "--propagation", "private", "sh", "-c",
                 " && ".join(script) + " && echo ready && exec sleep infinity"],
                stdout=subprocess.PIPE, text=True)
            if holder.stdout.readline().strip() != "ready":
                raise RuntimeError(f"{host}: the overlays could not be mounted")
            self.holders[host] = holder
            open(f"{self.work}/holders/{HOSTS[host]}", "w").write(str(holder.pid))

    def run_block(self, host, code, timeout):
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8", "TERM": "dumb"}
        if host == "build":
            env["PATH"] = os.environ.get("PATH", env["PATH"])
            env["CONFIGURATION"] = "debug"
            argv = ["bash", "-e", "-o", "pipefail", "-c", code]
        else:
            env["PATH"] = f"{SHIMS}:{env['PATH']}"
            env["VCOMDOC_STATE"] = f"{self.work}/{host}/state"
            env["VCOMDOC_WORK"] = self.work
            argv = ["nsenter", "-t", str(self.holders[host].pid), "-m", "-n", f"--wd={REPO}", "--", "bash", "-e", "-o", "pipefail", "-c", code]
        return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)

    def down(self):
        for host, holder in self.holders.items():
            state = f"{self.work}/{host}/state"
            for name in os.listdir(state) if os.path.isdir(state) else []:
                if name.endswith(".pid"):
                    try:
                        os.kill(int(open(f"{state}/{name}").read()), signal.SIGKILL)
                    except (OSError, ValueError):
                        pass
            holder.kill()
            holder.wait()
        for ns in self.namespaces.values():
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except OSError:
                    pass
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        if self.mounted:
            for _ in range(50):
                if subprocess.run(["umount", self.work], capture_output=True).returncode == 0:
                    break
                time.sleep(0.1)
            else:
                subprocess.run(["umount", "-l", self.work], capture_output=True)
        shutil.rmtree(self.work, ignore_errors=True)


def main():
    if os.geteuid() != 0:
        sys.exit("install-doc: needs root (network namespaces, overlay mounts, a package install)")
    started = time.time()
    steps = blocks()
    packages_before = {f for f in os.listdir(REPO) if f.endswith(".deb")}
    hosts = Hosts()
    count = 0
    outputs = {}
    ok = False
    try:
        hosts.up()
        for number, (host, code) in enumerate(steps, 1):
            for target in (["primary", "secondary"] if host == "both" else [host]):
                count += 1
                began = time.time()
                print(f"install-doc: block {number} on {target}: {code.strip().splitlines()[0][:90]}", flush=True)
                result = hosts.run_block(target, code, timeout=1200 if target == "build" else 300)
                output = (result.stdout + result.stderr).strip()
                for line in output.splitlines()[-12:]:
                    print(f"    {target}| {line}")
                print(f"    ({time.time() - began:.1f} s, exit {result.returncode})", flush=True)
                if result.returncode != 0:
                    print(f"install-doc: block {number} failed on {target}:\n{code}", file=sys.stderr)
                    for role in HOSTS:
                        log = f"{hosts.work}/{role}/state/vcom-server.service.log"
                        if os.path.exists(log):
                            print(f"--- {role}'s server log ---\n{open(log).read()[-3000:]}", file=sys.stderr)
                    # INSTALL_DOC_HOLD=SECONDS keeps the hosts up to look inside (nsenter -t PID -m -n).
                    hold = int(os.environ.get("INSTALL_DOC_HOLD", "0"))
                    if hold:
                        print(f"install-doc: holding {hold} s: " + ", ".join(f"{h} nsenter -t {p.pid} -m -n" for h, p in hosts.holders.items()), flush=True)
                        time.sleep(hold)
                    return 1
                outputs[(number, target)] = output
                if target == "build":
                    # What was built: its files, its conffile, and a unit systemd accepts.
                    made = sorted(f for f in os.listdir(REPO) if f.startswith("vcom-failover_") and f.endswith(".deb"))
                    check = subprocess.run([os.path.join(REPO, "Tools", "package", "verify-package.sh"), os.path.join(REPO, made[-1])],
                                           capture_output=True, text=True)
                    print("\n".join(f"    {line}" for line in (check.stdout + check.stderr).strip().splitlines()), flush=True)
                    if check.returncode != 0:
                        return 1
        everything = "\n".join(outputs.values())
        # The failover the doc shows: every client back on the secondary, none lost.
        if "never came back after the fault: 0" not in everything:
            print("install-doc: the doc's failover did not bring every client back", file=sys.stderr)
            return 1
        last = outputs[max(outputs)]
        if "healthy: vcom-primary serves" not in last:
            print(f"install-doc: the pair does not end healthy with the primary serving:\n{last}", file=sys.stderr)
            return 1
        ok = True
        return 0
    finally:
        hosts.down()
        for made in {f for f in os.listdir(REPO) if f.endswith(".deb")} - packages_before:
            os.remove(os.path.join(REPO, made))
        print(f"install-doc blocks={count} seconds={time.time() - started:.0f} result={'ok' if ok else 'failed'}")


if __name__ == "__main__":
    sys.exit(main())
