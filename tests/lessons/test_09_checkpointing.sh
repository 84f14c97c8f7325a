# test_09_checkpointing.sh: lesson 9 runs unattended; sqrt(n) segments cut the activation peak at
# least 2x for at most about one extra forward, with gradients identical; its pictures.
LESSON=09_checkpointing
. tests/lessons/lib.sh
run_lesson || finish
fits_screen  # every step fits a projected 100x35 terminal (30 lines of 100 columns)
at_least "activation peak reduction" "$(number 'activation peak reduction with sqrt(n) segments:')" 2
extra=$(number 'extra forwards computed with sqrt(n) segments:')
near "extra forwards" "$extra" 0.75 0.3
near "gradient difference" "$(number 'largest gradient difference to store-all:')" 0 0
for p in 09_timelines.png 09_memory_vs_segments.png 09_memory_vs_time.png; do picture "$p"; done
finish
