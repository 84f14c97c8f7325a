-- 01_tensors.lua: module 1, tensors and layout: one storage, many views.
-- Numbers to reproduce (lessons.md): a view copies 0 bytes; contiguous() copies numel*itemsize,
-- both measured from chalk.memory_stats(). Pictures: the storage with each view's elements
-- marked, beside their shape, stride and offset.
return {
  title = "Tensors and layout: one storage, many views",
  module = 1,
  -- Helpers every step uses, run before step 1 (and again whenever :back replays the lesson).
  setup = [[
    -- bytes of new storage a piece of code allocates, from chalk's memory accounting
    function bytes_allocated(f)
      local before = chalk.memory_stats().allocated_total
      f()
      return chalk.memory_stats().allocated_total - before
    end
    chart = require "chalk.chart"]],
  steps = {
    {
      title = "A tensor is a view of a storage",
      text = [[
        A tensor is two things: a flat block of memory, the storage, and a recipe for reading
        it, the view: a shape, a stride per dimension and an offset. Element (i, j) lives at
            offset + (i-1)*stride[1] + (j-1)*stride[2]
        in the storage. A 3x4 matrix laid out row by row has strides {4, 1}: one step down
        a column skips a whole row of 4 elements. bytes_allocated(f), used below, reads how
        many bytes of new storage f allocates from chalk's memory accounting.]],
      code = [[
        x = chalk.arange(1, 13):float():view(3, 4)
        print(x)
        print("shape", table.concat(x.shape, "x"), "stride", table.concat(x:stride(), ","))
        chart.storage({{"x", x}}, {file = "01_storage.png"})]],
    },
    {
      title = "A transpose moves no data",
      text = [[
        x:transpose(1, 2) (also x.T) swaps the strides: {4, 1} becomes {1, 4}. The new tensor
        reads the same 12 numbers in a different order, so nothing is copied: we measure
        0 bytes. It is not contiguous any more: walking it row by row jumps around the
        storage. Writing through the view changes x, because there is only one storage.]],
      code = [[
        y = nil
        copied = bytes_allocated(function() y = x:transpose(1, 2) end)
        print(("transpose copied %d bytes"):format(copied))
        print("stride", table.concat(y:stride(), ","), "contiguous?", y:is_contiguous())
        y[1][2] = 100          -- y(1,2) is x(2,1)
        print(x)
        y[1][2] = 5            -- put it back
        chart.storage({{"x", x}, {"y = x:transpose(1,2)", y}}, {file = "01_transpose.png"})]],
      check = function()
        assert(copied == 0, "a transpose should copy 0 bytes, measured " .. copied)
        assert(not y:is_contiguous(), "the transpose should not be contiguous")
      end,
    },
    {
      title = "Narrow and select: an offset and the same strides",
      text = [[
        x:narrow(2, 2, 2) keeps columns 2 and 3: the strides stay {4, 1} and the view starts
        one element into the storage (offset 1). x:select(1, 3) (or x[3]) drops a dimension:
        the third row is a 1-d view with offset 8. Slicing is free; that is why frameworks
        hand out views everywhere.]],
      code = [[
        z, row = nil, nil
        copied = bytes_allocated(function() z = x:narrow(2, 2, 2); row = x[3] end)
        print(("narrow + select copied %d bytes"):format(copied))
        print(z)
        chart.storage({{"x", x}, {"z = x:narrow(2,2,2)", z}, {"row = x[3]", row}},
                      {file = "01_narrow.png"})]],
      check = function()
        assert(copied == 0, "narrow and select should copy 0 bytes, measured " .. copied)
        assert(chalk.storage_info(z, 0).offset == 1, "the narrowed view starts at offset 1")
      end,
    },
    {
      title = "Expand and broadcasting: stride 0",
      text = [[
        A stride can be 0: then every index along that dimension reads the same element.
        b:expand(3, 4) turns a row of 4 numbers into a 3x4 tensor without copying it. This is
        exactly what broadcasting does when you add a row to a matrix: x + b behaves as if b
        had been expanded. The sum itself is a new tensor, and we see its 48 bytes allocated;
        the expanded view costs nothing.]],
      code = [[
        b = chalk.tensor{10, 20, 30, 40}
        bb = nil
        copied = bytes_allocated(function() bb = b:expand(3, 4) end)
        print(("expand copied %d bytes; strides of bb: %s")
          :format(copied, table.concat(bb:stride(), ",")))
        s = nil
        sum_bytes = bytes_allocated(function() s = x + b end)
        print(("x + b allocated %d bytes: its result, 12 floats"):format(sum_bytes))
        print(s)
        chart.storage({{"b", b}, {"bb = b:expand(3,4)", bb}}, {file = "01_expand.png"})]],
      check = function()
        assert(copied == 0, "expand should copy 0 bytes, measured " .. copied)
        assert(bb:stride()[1] == 0, "an expanded dimension has stride 0")
        assert(sum_bytes == 12 * 4, "x + b should allocate exactly its 48-byte result, measured " .. sum_bytes)
      end,
    },
    {
      title = "contiguous() copies numel * itemsize",
      text = [[
        Some operations need the elements in row-major order (view on a transposed tensor,
        many kernels). y:contiguous() makes that order real by copying: numel * itemsize
        bytes, 12 * 4 = 48 here. On a tensor that is already contiguous it returns the tensor
        itself and copies nothing.]],
      code = [[
        yc = nil
        copied = bytes_allocated(function() yc = y:contiguous() end)
        print(("y:contiguous() copied %d bytes; numel * itemsize = %d * %d = %d")
          :format(copied, y:numel(), 4, y:numel() * 4))
        copied_again = bytes_allocated(function() local same = x:contiguous() end)
        print(("x:contiguous() copied %d bytes (x was contiguous already)"):format(copied_again))
        chart.storage({{"yc = y:contiguous()", yc}}, {file = "01_contiguous.png",
          title = "yc owns a new storage, in y's order"})]],
      check = function()
        assert(copied == y:numel() * 4, "contiguous() should copy numel*itemsize bytes, measured " .. copied)
        assert(copied_again == 0, "contiguous() on a contiguous tensor should copy nothing")
      end,
    },
    {
      title = "At scale: views are free, copies cost bandwidth",
      text = [[
        The same law on a 1000 x 1000 matrix: the transpose is free, making it contiguous
        moves numel * itemsize = 4,000,000 bytes, timed after two warm-up copies (the first
        touches fresh pages), best of five. view() refuses a tensor no strides can reshape;
        reshape() copies only when it must.]],
      timing = "GB/s", -- the measured bandwidth varies from run to run
      code = [[
        big = chalk.randn(1000, 1000)
        print(("big.T: %d bytes"):format(bytes_allocated(function() bt = big.T end)))
        big_copied = bytes_allocated(function() btc = bt:contiguous() end)
        print(("big.T:contiguous(): %d bytes; numel * itemsize = %d")
          :format(big_copied, 1000 * 1000 * 4))
        for _ = 1, 2 do local warm = bt:contiguous() end
        best = math.huge
        for _ = 1, 5 do
          local t0 = chalk.clock(); local c = bt:contiguous(); best = math.min(best, chalk.clock() - t0)
        end
        print(("warm copy: %.2f ms, %.1f GB/s (read + write)")
          :format(best * 1e3, 2 * big_copied / best / 1e9))
        ok, err = pcall(function() return bt:view(-1) end)
        print("bt:view(-1):", ok, (tostring(err):gsub("^.-: ", ""):sub(1, 80)))
        print(("reshape of the transpose: %d bytes; of the original: %d bytes")
          :format(bytes_allocated(function() local r = bt:reshape(-1) end),
                  bytes_allocated(function() local r = big:reshape(-1) end)))]],
      check = function()
        assert(big_copied == 1000 * 1000 * 4, "contiguous() of a 1000x1000 f32 transpose copies 4,000,000 bytes")
      end,
    },
    {
      title = "Your turn",
      text = [[
        Try x:permute(2, 1), x:unsqueeze(1):expand(2, 3, 4), or x[{{}, 2}] and draw them with
            chart.storage({{"x", x}, {"v", v}})
        Predict the strides before you look.]],
    },
  },
}
