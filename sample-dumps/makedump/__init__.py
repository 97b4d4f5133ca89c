"""make-dump: real Linux kernel crash dumps of Debian cloud kernels, made under QEMU.

Entry points: ``sample-dumps/make-dump`` (makedump.cli) and
``sample-dumps/record-crash-output`` (makedump.crashout). See sample-dumps/README.md.
"""
