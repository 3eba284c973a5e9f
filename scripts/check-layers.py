#!/usr/bin/env python3
"""Checks that every #include in the source rooms points along an allowed edge (docs/architecture.md).

Usage: check-layers.py [REPO_ROOT]. Prints each violation (file:line, from-room -> to-room) and exits 1
if there is any. ctest runs it (tests/CMakeLists.txt), so an edge that goes upwards fails the tests.
"""
import os
import re
import sys

# room -> rooms it may include (itself always). core/base is the floor: everyone may use it.
ALLOWED = {
    'core': set(),
    'io': {'core'},
    'tokenizer': {'core', 'io'},
    'moe': {'core', 'io'},
    'llm': {'core', 'io', 'moe'},
    'chat': {'core', 'io', 'moe', 'llm', 'tokenizer'},
    'synth': {'core', 'io', 'moe', 'llm', 'tokenizer', 'diffusion'},
    'diffusion': {'core', 'io', 'tokenizer'},
    'server': {'core', 'io', 'moe', 'llm', 'chat', 'tokenizer', 'diffusion'},
    'bench': {'core', 'io', 'moe', 'llm', 'chat', 'synth', 'tokenizer', 'diffusion'},
    'cli': {'core', 'io', 'moe', 'llm', 'chat', 'synth', 'bench', 'tokenizer', 'diffusion',
            'server'},
}
# Within core the sub-rooms also go one way.
CORE_ALLOWED = {
    'base': set(),
    'quant': {'base'},
    'threads': {'base'},
    'kernels': {'base', 'quant', 'threads'},
    'ops': {'base', 'quant', 'threads', 'kernels'},
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/([a-z_0-9]+)?')


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), '..')
    bad = []
    for room in ALLOWED:
        top = os.path.join(root, room)
        for dirpath, _, files in os.walk(top):
            for name in files:
                if not name.endswith(('.h', '.cc')):
                    continue
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, root)
                sub = rel.split(os.sep)[1] if room == 'core' else None
                with open(path, encoding='utf-8') as f:
                    for n, line in enumerate(f, 1):
                        m = INCLUDE.match(line)
                        if not m:
                            continue
                        target, target_sub = m.group(1), m.group(2)
                        if target not in ALLOWED or target == room and room != 'core':
                            continue
                        if room == 'core':
                            if target != 'core':
                                bad.append(f'{rel}:{n}: core -> {target}')
                            elif sub in CORE_ALLOWED and target_sub in CORE_ALLOWED and \
                                    target_sub != sub and target_sub not in CORE_ALLOWED[sub]:
                                bad.append(f'{rel}:{n}: core/{sub} -> core/{target_sub}')
                        elif target not in ALLOWED[room]:
                            bad.append(f'{rel}:{n}: {room} -> {target}')
    for b in bad:
        print(b)
    print(f'{len(bad)} include edges against the layering')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
