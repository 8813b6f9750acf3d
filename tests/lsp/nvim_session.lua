-- A real Neovim session against `cromwell lsp`: run as
--   nvim --headless --clean -l nvim_session.lua WORKSPACE PYTHON RESULT_JSON [apply]
-- It opens geometry/shapes.py, starts the server with vim.lsp.start, lists the code actions
-- at Rectangle.perimeter, checks a configuration change and a command's error, and with
-- "apply" resolves "Complete function body", applies the edit and writes the buffer; with
-- "complete" asks for a completion (ghost text as an item) on a new line and applies it.
-- Everything it saw goes to RESULT_JSON for the Python test to check.

local workspace, python, result_path, mode = arg[1], arg[2], arg[3], arg[4]
local out = { errors = {} }

local function finish(code)
  local f = assert(io.open(result_path, "w"))
  f:write(vim.json.encode(out))
  f:close()
  os.exit(code)
end

local function fail(message)
  table.insert(out.errors, message)
  finish(1)
end

local path = workspace .. "/geometry/shapes.py"
vim.cmd.edit(vim.fn.fnameescape(path))
local buf = vim.api.nvim_get_current_buf()

local client_id = vim.lsp.start({
  name = "cromwell",
  cmd = { python, "-m", "cromwell_cli", "lsp" },
  root_dir = workspace,
  settings = { cromwell = { maxNewTokens = 256 } },
})
if not client_id then
  fail("vim.lsp.start returned nil")
end
local client = vim.lsp.get_client_by_id(client_id)
if not vim.wait(20000, function() return client.initialized end, 50) then
  fail("the server did not initialize")
end
out.server_name = client.server_info and client.server_info.name
out.resolve_provider = client.server_capabilities.codeActionProvider.resolveProvider

local function actions_at(line, character)
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(buf) },
    range = {
      start = { line = line, character = character },
      ["end"] = { line = line, character = character },
    },
    context = { diagnostics = {} },
  }
  local response, err = client:request_sync("textDocument/codeAction", params, 20000, buf)
  if not response then
    fail("codeAction: " .. tostring(err))
  end
  if response.err then
    fail("codeAction error: " .. vim.inspect(response.err))
  end
  return response.result or {}
end

local function titles(actions)
  local t = {}
  for _, a in ipairs(actions) do
    table.insert(t, a.title)
  end
  return t
end

-- Line 27 (1-based) is the `pass` of Rectangle.perimeter.
local actions = actions_at(26, 8)
out.titles = titles(actions)

-- Push a configuration change; the next listing must follow it.
client:notify("workspace/didChangeConfiguration", { settings = { cromwell = { actions = { "addDocstring" } } } })
out.titles_after_config = titles(actions_at(26, 8))
client:notify("workspace/didChangeConfiguration", {
  settings = { cromwell = { actions = { "editSelection", "fix", "completeBody", "addDocstring", "fromScreenshot" } } },
})

-- A model-free command: Edit selection without an instruction explains what it needs.
local data = { action = "editSelection", uri = vim.uri_from_bufnr(buf), version = 0, start_line = 0, end_line = 2 }
local response = client:request_sync("workspace/executeCommand",
  { command = "cromwell.editSelection", arguments = { data } }, 20000, buf)
out.command_error = response and response.err and response.err.message or vim.NIL

if mode == "apply" then
  local chosen
  for _, a in ipairs(actions_at(26, 8)) do
    if a.title == "Cromwell: Complete function body" then
      chosen = a
    end
  end
  if not chosen then
    fail("no Complete function body action")
  end
  local resolved = client:request_sync("codeAction/resolve", chosen, 600000, buf)
  if not resolved or resolved.err then
    fail("resolve: " .. vim.inspect(resolved and resolved.err))
  end
  out.resolved_has_edit = resolved.result.edit ~= nil
  vim.lsp.util.apply_workspace_edit(resolved.result.edit, client.offset_encoding)
  vim.cmd.write()
  out.written = table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), "\n")
end

if mode == "complete" then
  -- Neovim 0.11 has no inline completion: ghost text comes as a completion item. Type the
  -- start of a statement on a new line, ask at its end, and apply the item's edit.
  local typed = "        return 2 * (self."
  vim.api.nvim_buf_set_lines(buf, 27, 27, false, { typed })
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(buf) },
    position = { line = 27, character = #typed },
    context = { triggerKind = 1 },
  }
  local response = client:request_sync("textDocument/completion", params, 600000, buf)
  if not response or response.err then
    fail("completion: " .. vim.inspect(response and response.err))
  end
  local items = response.result and (response.result.items or response.result) or {}
  out.completion_items = #items
  if #items > 0 then
    out.completion_label = items[1].label
    out.completion_range = items[1].textEdit.range
    vim.lsp.util.apply_text_edits({ items[1].textEdit }, buf, client.offset_encoding)
    out.completed_line = vim.api.nvim_buf_get_lines(buf, 27, 28, false)[1]
  end
end

client:stop()
vim.wait(5000, function() return client:is_stopped() end, 50)
finish(0)
