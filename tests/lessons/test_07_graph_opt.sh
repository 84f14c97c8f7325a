# test_07_graph_opt.sh: lesson 7 runs unattended; op count and bytes moved before and after the
# passes (each of DCE, CSE, folding and the rewrites removes something), and its pictures.
. tests/lessons/lib.sh
start_lesson 07_graph_opt
before=$(number 'op count before:')
after=$(number 'op count after:')
near "op count before" "$before" 13 0
at_least "ops removed" "$((before - after))" 6
bb=$(number 'bytes moved before (MB):')
ba=$(number 'bytes moved after (MB):')
at_least "bytes saved (MB)" "$(awk -v a="$bb" -v b="$ba" 'BEGIN { print a - b }')" 0.5
at_least "training step ops removed" "$(($(number 'training step op count before:') - $(number 'training step op count after:')))" 5
for p in 07_before.png 07_after.png; do picture "$p"; done
finish
