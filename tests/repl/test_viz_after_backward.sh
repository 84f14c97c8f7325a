# test_viz_after_backward.sh: the lecture order forward, backward, then viz.graph / viz.step draws
# the whole graph (every node, the leaves' gradients, saved tensors marked freed) (issue 15).
TEST_NAME=viz_after_backward
. tests/repl/lib.sh
need_tmux
start_chalk --out "$TEST_HOME/out" || finish

type_line 'x = chalk.randn(4, 3); W1 = chalk.randn(3, 5):requires_grad_(); W2 = chalk.randn(5, 1):requires_grad_()'
type_line 'loss = x:matmul(W1):relu():matmul(W2):sum(); loss:backward(); collectgarbage()'
type_line 'd = io.open(chalk.viz.graph(loss, {format = "dot"})):read("a")'
type_line 'print(("NODES %d FREED %s"):format(select(2, d:gsub("%[id=\"n", "")), d:find("saved tensor freed", 1, true) ~= nil))'
expect "viz.graph after backward draws all 7 nodes, saved tensors marked freed" '^NODES 7 FREED true$'
type_line 'b = io.open(chalk.viz.graph(loss, {backward = true, format = "dot"})):read("a")'
type_line 'print(("TWINS %s LEAFGRAD %s"):format(select(2, b:gsub("grad of", "")) >= 4, b:find("into .grad", 1, true) ~= nil))'
expect "the backward picture has the gradient twins and the leaves' .grad" '^TWINS true LEAFGRAD true$'
type_line 'p, k, n = chalk.viz.step(loss); print(("STEP %d OF %d %s"):format(k, n, p:match("%.png$")))'
expect "viz.step after backward draws frames (4 ops: 9 frames)" '^STEP 1 OF 9 \.png$'
type_line 'print(pcall(loss.backward, loss))'
expect "a second backward without retain_graph still fails" 'retain_graph=true'
type_line ':quit'
expect ":quit exits cleanly" '^CHALK-EXITED 0$'
finish
