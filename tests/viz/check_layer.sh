#!/bin/sh
# check_layer.sh: viz/ is the one picture layer. Fails when DOT text or a colour literal is
# written outside viz/ (C, Lua, CUDA, Python sources; tests and docs may show DOT), when a file
# in viz/ includes a Lua header, or when viz/ reads the op table or autograd node internals.
# Run from the repository root (make check-viz runs it).
cd "${1:-.}" || exit 2
fail=0
src=$(git ls-files -co --exclude-standard -- '*.c' '*.h' '*.lua' '*.cu' '*.cuh' '*.py' 2>/dev/null |
      grep -v -e '^viz/' -e '^tests/' -e '^build/' -e '^shared/')
[ -n "$src" ] || { echo "check_layer: no sources found (run from the repository root)"; exit 2; }
# DOT text: a graph header, node/edge attribute lists, DOT colour and font attributes
hits=$(printf '%s\n' $src | xargs grep -nE \
  "[\"'\[](strict )?(di)?graph [A-Za-z_]* *\{|fillcolor|fontcolor|bgcolor|rankdir=|BGCOLOR|<TABLE|penwidth|shape=(box|plaintext|ellipse|circle)" \
  2>/dev/null)
if [ -n "$hits" ]; then echo "check_layer: DOT text outside viz/:"; echo "$hits"; fail=1; fi
# colour literals: #rgb / #rrggbb in a string
hits=$(printf '%s\n' $src | xargs grep -nE "[\"'](#[0-9a-fA-F]{6}|#[0-9a-fA-F]{3})[\"']" 2>/dev/null)
if [ -n "$hits" ]; then echo "check_layer: colour literals outside viz/ (use viz.colors / viz/palette.h):"; echo "$hits"; fail=1; fi
# viz/ includes no Lua header and reads no op table or struct ct_node
hits=$(grep -nE '#include *"(lua|lauxlib|lualib|lchalk[a-z_]*|lviz)\.h"|#include *<(lua|lauxlib|lualib)\.h>' viz/*.c viz/*.h)
if [ -n "$hits" ]; then echo "check_layer: viz/ includes a Lua header:"; echo "$hits"; fail=1; fi
hits=$(grep -nE '#include *"ops/optable\.h"|ct_optable|->attrs\b' viz/*.c viz/*.h)
if [ -n "$hits" ]; then echo "check_layer: viz/ reads the op table or node internals (use graph/inspect.h):"; echo "$hits"; fail=1; fi
# every picture's colours come from the palette: no literal colour in viz/ outside palette.h
hits=$(grep -nE '"#[0-9a-fA-F]{6}"' viz/*.c viz/*.h | grep -v '^viz/palette\.h:')
if [ -n "$hits" ]; then echo "check_layer: colour literal in viz/ outside palette.h:"; echo "$hits"; fail=1; fi
[ $fail = 0 ] && echo "check_layer: ok (DOT and colours only in viz/, palette only in viz/palette.h)"
exit $fail
