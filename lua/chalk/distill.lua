-- distill.lua: knowledge distillation (Hinton et al. 2015): a student learns from a teacher's
-- softened outputs as well as from the labels.
--
--   distill = require "chalk.distill"    (also chalk.efficiency.distill)
--   loss = distill.loss(student(x), teacher_logits, y, {temperature = 4, alpha = 0.9})
--   acc = distill.train(student, X, Y, {teacher = teacher, steps = 300, seed = 1})
--
-- The loss is alpha x T^2 x KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) x cross_entropy(s, y).
-- Softening by T > 1 shows the student the teacher's "dark knowledge" (a shirt looks more like a
-- T-shirt than a bag); T^2 keeps the soft term's gradients the size of the hard term's as T grows.
-- The teacher's logits are constants: no gradient reaches the teacher.
local chalk = require "chalk"

local M = {}

-- KL(softmax(t/T) || softmax(s/T)), the mean over the rows; t is treated as a constant.
function M.kl(student_logits, teacher_logits, T)
  T = T or 1
  local log_p = (teacher_logits:detach() * (1 / T)):log_softmax(-1)
  local log_q = (student_logits * (1 / T)):log_softmax(-1)
  return (log_p:exp() * (log_p - log_q)):sum() * (1 / student_logits.shape[1])
end

-- The distillation loss; opts: temperature (4), alpha (0.9: the weight of the soft term).
function M.loss(student_logits, teacher_logits, labels, opts)
  opts = opts or {}
  local T, alpha = opts.temperature or 4, opts.alpha or 0.9
  local soft = M.kl(student_logits, teacher_logits, T) * (alpha * T * T)
  if alpha >= 1 then return soft end
  return soft + chalk.cross_entropy(student_logits, labels) * (1 - alpha)
end

-- Share of rows of X that model classifies as Y (batches of 1000, no graph).
function M.accuracy(model, X, Y)
  local correct = 0
  chalk.no_grad(function()
    for i = 1, X.shape[1], 1000 do
      local n = math.min(1000, X.shape[1] - i + 1)
      correct = correct + model(X:narrow(1, i, n)):argmax(2):eq(Y:narrow(1, i, n)):to("i64"):sum():item()
    end
  end)
  return correct / X.shape[1]
end

-- distill.train(student, X, Y, opts): Adam for opts.steps steps on batches drawn with chalk's RNG
-- seeded by opts.seed (the same batches with and without a teacher). With opts.teacher the loss is
-- distill.loss (opts.temperature, opts.alpha), else cross-entropy on the labels alone.
-- opts: steps (300), batch (64), lr (1e-3), seed (1). Returns the list of losses.
function M.train(student, X, Y, opts)
  opts = opts or {}
  local optim = require "chalk.optim"
  local opt = optim.Adam(student:parameters(), { lr = opts.lr or 1e-3 })
  local B, N = opts.batch or 64, X.shape[1]
  chalk.manual_seed(opts.seed or 1)
  local order = chalk.rand(N):argsort(1)
  local losses, pos = {}, 1
  for step = 1, opts.steps or 300 do
    if pos + B - 1 > N then
      order, pos = chalk.rand(N):argsort(1), 1
    end
    local idx = order:narrow(1, pos, B)
    pos = pos + B
    local xb, yb = X:index_select(1, idx), Y:index_select(1, idx)
    opt:zero_grad()
    local logits = student(xb)
    local loss
    if opts.teacher then
      local t = chalk.no_grad(function() return opts.teacher(xb) end)
      loss = M.loss(logits, t, yb, opts)
    else
      loss = chalk.cross_entropy(logits, yb)
    end
    loss:backward()
    opt:step()
    losses[step] = loss:item()
  end
  return losses
end

return M
