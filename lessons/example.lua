-- example.lua: a five-step first lesson, and the pattern to copy for a new one (lessons/README.md).
return {
  title = "A first look at chalk",
  module = 0,
  steps = {
    {
      title = "Lua in one minute",
      text = [[
        chalk speaks Lua. Tables are Lua's one data structure: arrays, records
        and objects. Indices start at 1, as they will for tensors too.]],
      code = [[
        squares = {}
        for i = 1, 5 do squares[i] = i * i end
        print(table.concat(squares, " "))]],
    },
    {
      title = "A tensor",
      text = [[
        chalk.tensor builds a tensor from nested tables; f32 unless you say
        otherwise. Printing it shows its values, shape, dtype and device.]],
      code = [[
        x = chalk.tensor{{1, 2}, {3, 4}}
        print(x)]],
    },
    {
      title = "A transpose is a view",
      text = [[
        x:transpose(1, 2) swaps the two dimensions without copying: y shares
        x's storage and only its strides differ, so y is not contiguous.]],
      code = [[
        y = x:transpose(1, 2)
        print(y)
        print("contiguous?", y:is_contiguous())]],
      check = function() assert(y ~= nil, "y should exist after this step") end,
    },
    {
      title = "Reductions",
      text = [[
        sum adds every element into a 0-d tensor; item() turns that into a Lua
        number. A view sums the same numbers as its base.]],
      code = [[
        print(x:sum():item(), y:sum():item())]],
    },
    {
      title = "Your turn",
      text = [[
        Everything made here is still yours at the prompt. Try x:<Tab> to see the
        methods, x.shape, or :mem for the bytes these tensors hold. Press Enter to
        finish the lesson.]],
    },
  },
}
