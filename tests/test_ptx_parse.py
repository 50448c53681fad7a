"""The PTX reader: every construct ptxgen emits and common hand-written forms parse into the right
operands; text outside the subset is a PtxSyntaxError naming the line; an instruction the
semantics do not model parses, and is then named by the emulator as not modelled."""

from __future__ import annotations

import pytest

from verify.emulate import compile_entry
from verify.ptxparse import Addr, Guard, Imm, PtxSyntaxError, Reg, Sym, Vec, parse_ptx
from verify.semantics import NotModelled

MODULE = """
.version 8.0
.target sm_90a
.address_size 64
.global .align 4 .u32 counter;
.global .align 8 .b8 partials[64];

.visible .entry k(
\t.param .u64 k_param_0,
\t.param .u64 k_param_1
)
.reqntid 128, 1, 1
.reqnctapercluster 2, 1, 1
{
\t.reg .b32 %r<4>;
\t.reg .b64 %rd<3>;
\t.reg .f32 %f<2>;
\t.reg .pred %p<2>;
\t.reg .b16 %h<2>;
\t.shared .align 16 .b8 tile[512];
\tld.param.u64 %rd0, [k_param_0];   // a comment
\tmov.u32 %r0, %tid.x;
\tmov.u32 %r1, tile;
\tmov.f32 %f0, 0f3F800000;
\tld.global.v4.b32 {%r0, %r1, %r2, %r3}, [%rd0+16];
\tmov.b32 {%h0, %h1}, %r2;
\t/* a block
\t   comment */
$L_loop:
\tsetp.lt.u32 %p0, %r0, 0x40;
\t@!%p0 bra.uni $L_done;
\tshfl.sync.bfly.b32 %r3, %r2, 16, 31, 0xffffffff;
\tst.shared.f32 [%r1+-4], %f0;
\t{
\t\t.reg .b32 %inner;
\t\tadd.s32 %inner, %r0, -1;
\t}
\tbra $L_loop;
$L_done:
\tret;
}
"""


def test_module_structure_and_operands() -> None:
    module = parse_ptx(MODULE)
    assert (module.version, module.target, module.address_size) == ("8.0", "sm_90a", 64)
    assert [(g.name, g.type, g.count) for g in module.globals] == [("counter", "u32", None), ("partials", "b8", 64)]
    entry = module.entries["k"]
    assert [p.name for p in entry.params] == ["k_param_0", "k_param_1"]
    assert entry.performance == {".reqntid": (128, 1, 1), ".reqnctapercluster": (2, 1, 1)}
    assert entry.registers["%r3"] == "b32" and entry.registers["%h1"] == "b16" and entry.registers["%inner"] == "b32"
    assert [(v.name, v.align, v.size) for v in entry.shared] == [("tile", 16, 512)]
    body = {ins.opcode: ins for ins in entry.body}
    assert body["ld.param.u64"].operands == (Reg("%rd0"), Addr(Sym("k_param_0"), 0))
    assert body["mov.f32"].operands[1] == Imm(1.0, 0x3F800000, 32)
    assert body["ld.global.v4.b32"].operands == (Vec(("%r0", "%r1", "%r2", "%r3")), Addr(Reg("%rd0"), 16))
    assert body["bra.uni"].guard == Guard("%p0", negated=True)
    assert body["bra.uni"].operands == (Sym("$L_done"),)
    assert body["st.shared.f32"].operands[0] == Addr(Reg("%r1"), -4)
    assert body["setp.lt.u32"].operands[2] == Imm(0x40)
    assert body["add.s32"].operands[2] == Imm(-1)
    assert entry.labels == {"$L_loop": 6, "$L_done": 12}
    assert entry.body[entry.labels["$L_done"]].opcode == "ret"
    assert body["shfl.sync.bfly.b32"].line == line_of("shfl.sync")


def line_of(text: str) -> int:
    return next(i for i, line in enumerate(MODULE.splitlines(), 1) if text in line)


def test_a_syntax_error_names_the_line() -> None:
    broken = MODULE.replace("mov.u32 %r0, %tid.x;", "mov.u32 %r0 %tid.x;")
    with pytest.raises(PtxSyntaxError, match=rf"line {line_of('%tid.x')}, .*\n.*mov\.u32 %r0 %tid\.x"):
        parse_ptx(broken)


def test_an_unmodelled_instruction_parses_and_is_named() -> None:
    module = parse_ptx(MODULE.replace("mov.b32 {%h0, %h1}, %r2;", "prmt.b32 %r2, %r0, %r1, 0x3210;"))
    with pytest.raises(NotModelled, match=r"line \d+: prmt\.b32: instruction prmt"):
        compile_entry(module.entries["k"])


@pytest.mark.parametrize("text", [
    "ld.global.b32 %r0, [%rd0+8];", "st.global.v2.b16 [%rd0], {%h0, %h1};", "@%p0 st.global.u32 [%rd0], 0;",
    "cvt.rn.bf16.f32 %h0, %f0;", "setp.gtu.and.f32 %p1, %f0, %f1, %p0;", "atom.global.add.u32 %r0, [%rd0], 1;",
    "mov.u64 %rd1, partials;", "ld.shared::cluster.f32 %f0, [%r1+4];", "barrier.cluster.wait.acquire.aligned;",
    "mapa.shared::cluster.u32 %r1, %r0, 1;", "fma.rn.f32 %f0, %f1, %f0, 0fBF800000;",
    "mov.f64 %fd0, 0d3FF0000000000000;",
    "mov.f32 %f0, 1.5;", "ld.global.nc.L1::no_allocate.v4.b32 {%r0, _, %r2, %r3}, [%rd0];",
])
def test_instruction_forms_parse(text: str) -> None:
    module = parse_ptx(MODULE.replace("\tret;", f"\t{text}\n\tret;"))
    assert module.entries["k"].body[-2].opcode == text.rstrip(";").split()[1 if text.startswith("@") else 0]
