"""kmem -i's BUFFERS when a block device inode is on a page the dump lacks: the others are
counted and the missing one is said, instead of losing the whole line (seen on 7.x dumps)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_robustness_support import overlay

from crashtui.analysis.session import Session
from crashtui.kernel.lists import walk_list

pytestmark = pytest.mark.needs_vmlinux


def test_buffers_counts_the_readable_inodes(sysrq_dump: Path, vmlinux_path: Path) -> None:
    session = Session.open(sysrq_dump, vmlinux_path)
    k = session.kernel
    sb = k.read_u64(k.symbol("blockdev_superblock"))
    nodes = walk_list(k, sb + k.offsetof("super_block", "s_inodes")).nodes
    assert len(nodes) == 2  # the 6.1 sample's two block device inodes
    o_sb_list, o_mapping = k.offsetof("inode", "i_sb_list"), k.offsetof("inode", "i_mapping")
    first_mapping = k.read_u64(nodes[0] - o_sb_list + o_mapping)
    with overlay(k) as view:
        view.set_u64(first_mapping + k.offsetof("address_space", "nrpages"), 7)
        view.hole(k.read_u64(nodes[1] - o_sb_list + o_mapping), 8 << 10)  # 2nd one's mapping
        kmem = session.kmem
    row = kmem.row("BUFFERS")
    assert row is not None and row.pages == 7
    assert any(e.startswith("BUFFERS: 1 block device inode(s) not counted: cannot read")
               for e in kmem.errors), kmem.errors
