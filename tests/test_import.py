"""`import tinygradattn` loads no kernel extension; the first op that runs a kernel does."""
import subprocess
import sys

CODE = """
import sys
import tinygradattn as tga

def extensions():
    return sorted(m for m in sys.modules
                  if m.startswith("tinygradattn._") and m != "tinygradattn._openmp_env")

print(extensions())
x = tga.ones(2)
print(extensions())
y = x @ x
print(extensions())
tga.softmax(tga.ones(3, 4), -1)
print(extensions())
"""


def test_import_loads_no_extension_until_a_kernel_runs():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    after_import, after_ones, after_matmul, after_softmax = out.stdout.splitlines()
    assert after_import == "[]"
    assert after_ones == "[]"                                   # numpy only
    assert "tinygradattn._core" in after_matmul
    assert "tinygradattn._core" in after_softmax
    assert "tinygradattn._attention" not in after_softmax       # only what ran


def test_runtime_goes_through_the_backend():
    import tinygradattn as tga
    from tinygradattn.backend import get_backend
    cpu = get_backend("cpu")
    info = tga.backend_info()
    assert info == {**cpu.info(), "buffer_pool": info["buffer_pool"]}
    assert tga.get_num_threads() == cpu.get_num_threads()
