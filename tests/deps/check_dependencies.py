#!/usr/bin/env python3
"""The install list is complete: proven, not remembered.

Every GStreamer element that arcly creates — in C/C++ (gst_element_factory_make, launch
strings, element-name tables), in pipelines/, in the launch lines of README.md and docs/ —
and every command-line tool that the tests, benchmarks and scripts run must come from a
Debian package named in scripts/debian-packages or from one of their dependencies
(Depends/Pre-Depends, as `apt-get install --no-install-recommends` pulls them in).

For each element: the registry names the plugin file that provides it, `dpkg -S` the package
that ships that file. For each tool: PATH names the file, `dpkg -S` its package. A failure
names the element or tool, where it is used, the file and the missing package.

usage: check_dependencies.py SOURCE_ROOT [--list]   (--list prints what was found)
Exit 0 when complete, 1 when not, 77 (skip) off Debian (no dpkg).
"""
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else ".")
LIST = "--list" in sys.argv

# Elements built by this project: not a package's business.
OWN_ELEMENT = re.compile(r"^arcly")
# Names that look like elements but are not meant to exist (with why).
NOT_ELEMENTS = {
    "nosuchelement": "tests/ingest: a source that names a missing element on purpose",
}
CODE_DIRS = ["engine", "gst", "elements", "host", "tests", "bench"]
CODE_EXT = (".c", ".cpp", ".h", ".hpp")
SHELL_BUILTINS = {
    "cd", "echo", "exec", "exit", "export", "set", "shift", "source", "test", "trap", "wait",
    "local", "read", "return", "true", "false", "if", "then", "else", "fi", "for", "do", "done",
    "while", "case", "esac", "function", "printf", "kill", "sleep", "mapfile", "declare", "eval",
    "unset", "command", "type", "elif", "in", "sudo", "[", "[[", "until", "break", "continue",
}


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, **kw)


def files_under(dirs, exts=None):
    for d in dirs:
        base = os.path.join(ROOT, d)
        if os.path.isfile(base):
            yield base
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [x for x in dirnames if not x.startswith(("build", "."))]
            for f in sorted(filenames):
                if exts is None or f.endswith(exts):
                    yield os.path.join(dirpath, f)


def rel(path):
    return os.path.relpath(path, ROOT)


# ---------------------------------------------------------------- the registry
def registry_elements():
    """Element factory name -> plugin file, for every element this machine has."""
    out = run(["gst-inspect-1.0"]).stdout
    names = set()
    for line in out.splitlines():
        m = re.match(r"^([\w-]+):\s+([\w-]+):", line)
        if m:
            names.add(m.group(2))
    return names


def plugin_file(element):
    out = run(["gst-inspect-1.0", element]).stdout
    m = re.search(r"^\s*Filename\s+(\S+)", out, re.M)
    if m and m.group(1) == "(null)" and re.search(r"^\s*Name\s+staticelements", out, re.M):
        # bin, pipeline: linked into libgstreamer itself.
        return core_library()
    return m.group(1) if m else None


def core_library():
    out = run(["pkg-config", "--variable=libdir", "gstreamer-1.0"]).stdout.strip()
    return os.path.join(out or "/usr/lib/x86_64-linux-gnu", "libgstreamer-1.0.so.0")


# ---------------------------------------------------------------- where elements are named
WORD = r"[a-z][a-z0-9_]*[a-z0-9]"


def launch_candidates(text):
    """Element names in gst-launch syntax: a word right after '! ' or right before
    its properties and ' !'. Caps (with '/'), properties (with '=') never match."""
    found = set()
    for m in re.finditer(r"!\s*\"?\s*(" + WORD + r")(?![\w/=.,:-])", text):
        found.add(m.group(1))
    for m in re.finditer(r"(?:^|(?<=[\s\"'(]))(" + WORD + r")((?:\s+[a-z][\w-]*=[^\s!\"]+)*)\s*\"?\s*!\s",
                         text, re.M):
        found.add(m.group(1))
    return found


def code_candidates(text):
    strong = set(re.findall(r"factory_make\s*\(\s*\"([\w-]+)\"", text))
    strong |= set(re.findall(r"factory_find\s*\(\s*\"([\w-]+)\"", text))
    # A string literal that is exactly an element's name (tables of muxers, payloaders...).
    weak = set(re.findall(r"\"(" + WORD + r")\"", text))
    # Launch strings live in string literals and may span concatenated ones: join
    # them first, then read only what is inside quotes (C++'s own `!` is no pipe).
    joined = re.sub(r"\"\s*\n\s*\"", "", text)
    for literal in re.findall(r"\"((?:[^\"\\\n]|\\.)*)\"", joined):
        strong |= launch_candidates(literal)
    return strong, weak


def markdown_launch_lines(text):
    """Launch lines of README/docs: fenced code blocks and inline `...` spans with ' ! '."""
    chunks = [body for lang, body in re.findall(r"```(\w*)\n(.*?)```", text, re.S) if lang != "text"]
    chunks += [c for c in re.findall(r"`([^`\n]+)`", text) if " ! " in c]
    return "\n".join(c.replace("\\\n", " ") for c in chunks)


def element_uses(known):
    uses = {}  # element -> first place it is used

    def note(names, where, must_exist):
        for n in names:
            if OWN_ELEMENT.match(n) or n in NOT_ELEMENTS:
                continue
            if n in known or must_exist:
                uses.setdefault(n, where)

    for path in files_under(CODE_DIRS, CODE_EXT):
        text = open(path, errors="replace").read()
        strong, weak = code_candidates(text)
        note(strong, rel(path), True)
        note(weak, rel(path), False)
    for path in files_under(["pipelines", "scripts"]):
        text = open(path, errors="replace").read()
        note(launch_candidates(text.replace("\\\n", " ")), rel(path), True)
    for path in [os.path.join(ROOT, "README.md")] + list(files_under(["docs"], (".md",))):
        if os.path.exists(path):
            note(launch_candidates(markdown_launch_lines(open(path).read())), rel(path), True)
    return uses


# ---------------------------------------------------------------- where tools are run
def tool_uses():
    uses = {}
    argv0 = re.compile(r"(?:Process|spawn\w*|exec\w*)\s*\(\s*\{?\s*\"([\w.+-]+)\"")
    popen = re.compile(r"(?:popen|system)\s*\(\s*\(?\s*(?:std::string\()?\s*\"([\w.+-]+)")
    piped = re.compile(r"\|\s*([a-z][\w.+-]*)\s")
    for path in files_under(["tests", "bench"], CODE_EXT + (".py",)):
        text = open(path, errors="replace").read()
        for rx in (argv0, popen):
            for m in rx.finditer(text):
                uses.setdefault(m.group(1), rel(path))
        for lit in re.findall(r"\"([^\"\n]*)\"", text):
            for m in piped.finditer(lit + " "):
                uses.setdefault(m.group(1), rel(path))
    shell = [p for p in files_under(["pipelines", "scripts", ".ci", "tests"])
             if open(p, errors="replace").readline().startswith("#!")
             and re.search(r"\b(ba)?sh\b", open(p, errors="replace").readline())]
    for path in shell:
        heredoc = None  # inside a here-document (python code, text): not commands
        for line in open(path, errors="replace"):
            if heredoc:
                if line.strip() == heredoc:
                    heredoc = None
                continue
            m = re.search(r"<<-?\s*['\"]?(\w+)['\"]?", line)
            if m:
                heredoc = m.group(1)
            line = line.split("#")[0] if not line.lstrip().startswith("#!") else ""
            for part in re.split(r"\|\||&&|\||;|\$\(|\(", line):
                words = part.split()
                while words and (re.match(r"^\w+=", words[0]) or words[0] in ("exec", "$sudo", "time", "nice")):
                    words.pop(0)
                if words and words[0] in ("timeout", "setarch") and len(words) > 2:
                    uses.setdefault(words[0], rel(path))
                    words = words[2:] if words[0] == "timeout" else words[3:]
                if words and re.match(r"^[a-z][\w.+-]*$", words[0]) and words[0] not in SHELL_BUILTINS:
                    uses.setdefault(words[0], rel(path))
    # Only what exists as a program is a tool (the rest are function names, variables...).
    return {t: w for t, w in uses.items() if shutil.which(t) or t in KNOWN_TOOLS}


# Tools that must be found even when missing on this machine (a missing one is the bug).
KNOWN_TOOLS = {"ffmpeg", "ffprobe", "srt-live-transmit", "gst-launch-1.0", "gst-inspect-1.0",
               "gst-discoverer-1.0", "setarch", "systemd-analyze", "pkg-config"}


# ---------------------------------------------------------------- Debian packages
def dpkg_owner(path):
    # Merged /usr: a file under /lib may be registered as /usr/lib, and the other way.
    variants = [path, os.path.realpath(path)]
    for v in list(variants):
        if v.startswith(("/lib/", "/bin/", "/sbin/")):
            variants.append("/usr" + v)
        elif v.startswith(("/usr/lib/", "/usr/bin/", "/usr/sbin/")):
            variants.append(v[4:])
    for v in variants:
        r = run(["dpkg", "-S", v])
        if r.returncode == 0:
            return r.stdout.split(":")[0].split(",")[0].strip()
    return None


def owner_of_program(name):
    candidates = []
    found = shutil.which(name)
    if found:
        candidates += [found, os.path.realpath(found)]
    for d in ("/usr/bin", "/bin", "/usr/sbin", "/sbin"):
        candidates.append(os.path.join(d, name))
    for c in candidates:
        if os.path.exists(c):
            pkg = dpkg_owner(c)
            if pkg:
                return pkg, c
    return None, found


def installed_packages():
    """Installed packages: their dependencies, the providers of virtual packages, and the
    base every Debian system has (Essential: yes, Priority: required)."""
    fmt = "${Package}\\t${Status}\\t${Depends}\\t${Pre-Depends}\\t${Provides}\\t${Essential}\\t${Priority}\\n"
    out = run(["dpkg-query", "-W", "-f=" + fmt]).stdout
    deps, providers, base = {}, {}, []
    for line in out.splitlines():
        name, status, dep, pre, prov, essential, priority = (line.split("\t") + [""] * 7)[:7]
        if "installed" not in status.split():
            continue
        if essential == "yes" or priority == "required":
            base.append(name)
        deps[name] = ", ".join(x for x in (dep, pre) if x)
        for p in prov.split(","):
            p = p.strip().split(" ")[0]
            if p:
                providers.setdefault(p, []).append(name)
    return deps, providers, base


def closure(roots, deps, providers):
    """What apt-get install --no-install-recommends ROOTS brings: Depends and Pre-Depends,
    the first alternative of each (or its installed providers when it is virtual)."""
    seen, todo = set(), list(roots)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        for group in filter(None, (g.strip() for g in deps.get(p, "").split(","))):
            first = group.split("|")[0].strip().split(" ")[0].split(":")[0]
            if first in deps:
                todo.append(first)
            else:
                todo.extend(providers.get(first, []))
    return seen


def read_list():
    path = os.path.join(ROOT, "scripts", "debian-packages")
    pkgs = []
    for line in open(path):
        line = line.split("#")[0].strip()
        if line:
            pkgs.append(line)
    return pkgs


def main():
    if not shutil.which("dpkg-query"):
        print("SKIP: not a Debian system (no dpkg-query)")
        return 77
    listed = read_list()
    deps, providers, base = installed_packages()
    not_installed = [p for p in listed if p not in deps]
    have = closure(listed + base, deps, providers)
    problems = []
    for p in not_installed:
        problems.append(f"package {p} is in scripts/debian-packages but not installed: run scripts/dev deps")

    known = registry_elements()
    elements = element_uses(known)
    for name, where in sorted(elements.items()):
        if name not in known:
            problems.append(f"element {name} (used in {where}) is not on this machine: no installed "
                            f"plugin provides it; install the package that does and list it in "
                            f"scripts/debian-packages")
            continue
        f = plugin_file(name)
        pkg = dpkg_owner(f) if f else None
        if LIST:
            print(f"element {name:24} {where:40} {f}  [{pkg}]")
        if not f or not pkg:
            problems.append(f"element {name} (used in {where}): its plugin file {f} belongs to no "
                            f"Debian package (installed by hand?)")
        elif pkg not in have:
            problems.append(f"element {name} (used in {where}) is provided by {f}, shipped by the "
                            f"package {pkg}, which is not in scripts/debian-packages nor a dependency "
                            f"of a package there")

    for tool, where in sorted(tool_uses().items()):
        pkg, path = owner_of_program(tool)
        if LIST:
            print(f"tool    {tool:24} {where:40} {path}  [{pkg}]")
        if not path:
            problems.append(f"tool {tool} (run by {where}) is not installed: install its package and "
                            f"list it in scripts/debian-packages")
        elif not pkg:
            problems.append(f"tool {tool} (run by {where}) at {path} belongs to no Debian package")
        elif pkg not in have:
            problems.append(f"tool {tool} (run by {where}) is {path}, shipped by the package {pkg}, "
                            f"which is not in scripts/debian-packages nor a dependency of a package there")

    print(f"{len(elements)} elements and {len(tool_uses())} tools checked against "
          f"{len(listed)} listed packages ({len(have)} with their dependencies)")
    for p in problems:
        print("MISSING: " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
