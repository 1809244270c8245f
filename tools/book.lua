-- Pandoc filter for the fallback renderer (tools/book.py): cross-references, callouts and
-- numbered equations, for typst (PDF) and HTML. Numbers come from tools/book.py in the
-- `crossref` metadata map (label -> "Figure 1.2"), so both outputs agree with each other.

local crossref = {}
local unresolved = {}

local function is_typst() return FORMAT:match("typst") ~= nil end

local function typst_inlines(inlines)
  return pandoc.write(pandoc.Pandoc({pandoc.Plain(inlines)}), "typst"):gsub("%s+$", "")
end

local function typst_string(s)
  return '"' .. s:gsub("\\", "\\\\"):gsub('"', '\\"') .. '"'
end

function Meta(meta)
  if meta.crossref then
    for id, text in pairs(meta.crossref) do crossref[id] = pandoc.utils.stringify(text) end
  end
end

-- @fig-x, @tbl-x, @sec-x, @eq-x, @exr-x become links whose text is the number ("Figure 1.2").
function Cite(cite)
  local out = pandoc.Inlines({})
  for i, c in ipairs(cite.citations) do
    local id = c.id
    local prefix = id:match("^(%a+)%-")
    if not (prefix == "fig" or prefix == "tbl" or prefix == "sec" or prefix == "eq" or prefix == "exr") then
      return nil -- a bibliography citation: citeproc's job
    end
    local text = crossref[id]
    if i > 1 then out:insert(pandoc.Str(", ")) end
    if text == nil then
      unresolved[#unresolved + 1] = id
      out:insert(pandoc.Str("?@" .. id))
    else
      if c.mode == "SuppressAuthor" then text = text:gsub("^%S+%s+", "") end
      out:extend(c.prefix)
      out:insert(pandoc.Link(text, "#" .. id))
      out:extend(c.suffix)
    end
  end
  return out
end

-- Quarto callouts: ::: {.callout-note} with an optional "## Title" first.
local callout_kinds = {"note", "tip", "warning", "important", "caution"}
local function callout_kind(div)
  for _, k in ipairs(callout_kinds) do
    if div.classes:includes("callout-" .. k) then return k end
  end
end

local function callout(div, kind)
  local title = nil
  local body = div.content
  if #body > 0 and body[1].t == "Header" then
    title = body[1].content
    body = pandoc.List({table.unpack(body, 2)})
  end
  if is_typst() then
    local open = '#callout(kind: "' .. kind .. '"'
    if title then open = open .. ", title: [" .. typst_inlines(title) .. "]" end
    local blocks = pandoc.List({pandoc.RawBlock("typst", open .. ")[")})
    blocks:extend(body)
    blocks:insert(pandoc.RawBlock("typst", "]"))
    return blocks
  end
  local heading = title or pandoc.Inlines({pandoc.Str(kind:sub(1, 1):upper() .. kind:sub(2))})
  local classes = {"callout", "callout-" .. kind}
  for _, c in ipairs(div.classes) do
    if not c:match("^callout") then table.insert(classes, c) end
  end
  if div.attributes["collapse"] == "true" then  -- folded: a <details> the reader opens
    local blocks = pandoc.List({pandoc.RawBlock("html",
      '<details class="' .. table.concat(classes, " ") .. '"><summary class="callout-title">' ..
      pandoc.write(pandoc.Pandoc({pandoc.Plain(heading)}), "html"):gsub("%s+$", "") .. "</summary>")})
    blocks:extend(body)
    blocks:insert(pandoc.RawBlock("html", "</details>"))
    return blocks
  end
  local blocks = pandoc.List({pandoc.Div(pandoc.Plain(heading), pandoc.Attr("", {"callout-title"}))})
  blocks:extend(body)
  return pandoc.Div(blocks, pandoc.Attr(div.identifier, classes))
end

-- Exercises: ::: {#exr-x .exercise number="3.2"} with an optional "## Title" first
-- (tools/book.py numbers them per chapter, as Quarto does).
local function exercise(div)
  local title = nil
  local body = div.content
  if #body > 0 and body[1].t == "Header" then
    title = body[1].content
    body = pandoc.List({table.unpack(body, 2)})
  end
  local label = pandoc.Inlines({pandoc.Strong({pandoc.Str("Exercise"), pandoc.Space(),
    pandoc.Str(div.attributes["number"] or "?")})})
  if title then
    label:insert(pandoc.Space())
    label:insert(pandoc.Str("("))
    label:extend(title)
    label:insert(pandoc.Str(")"))
  end
  if is_typst() then
    local blocks = pandoc.List({pandoc.RawBlock("typst", "#exercise(title: [" .. typst_inlines(label) .. "])[")})
    blocks:extend(body)
    blocks:insert(pandoc.RawBlock("typst", "] <" .. div.identifier .. ">"))
    return blocks
  end
  local blocks = pandoc.List({pandoc.Div(pandoc.Plain(label), pandoc.Attr("", {"exercise-title"}))})
  blocks:extend(body)
  return pandoc.Div(blocks, pandoc.Attr(div.identifier, {"exercise"}))
end

-- Quarto's conditional content: ::: {.content-visible when-format="html"} (or
-- .content-hidden); "pdf" and "typst" name the printed book.
local function format_matches(when)
  if when == nil then return true end
  if is_typst() then return when == "typst" or when == "pdf" end
  return when == "html"
end

-- Numbered display equations: a Div {#eq-x .numbered-equation number="1.2"} around $$...$$.
local function numbered_equation(div)
  local number = div.attributes["number"] or "?"
  local math = nil
  div:walk({Math = function(m) if m.mathtype == "DisplayMath" and not math then math = m end end})
  if not math then return nil end
  if is_typst() then
    local eq = typst_inlines({math})
    return pandoc.RawBlock("typst", "#[#set math.equation(numbering: _ => " .. typst_string("(" .. number .. ")") ..
      ", number-align: right)\n" .. eq .. "\n] <" .. div.identifier .. ">")
  end
  return pandoc.Div({pandoc.Plain({math, pandoc.Span(pandoc.Str("(" .. number .. ")"), pandoc.Attr("", {"eq-number"}))})},
    pandoc.Attr(div.identifier, {"numbered-equation"}))
end

function Div(div)
  if div.classes:includes("content-visible") then
    return format_matches(div.attributes["when-format"]) and div.content or {}
  end
  if div.classes:includes("content-hidden") then
    return format_matches(div.attributes["when-format"]) and {} or div.content
  end
  if div.classes:includes("exercise") then return exercise(div) end
  local kind = callout_kind(div)
  if kind then return callout(div, kind) end
  if div.classes:includes("numbered-equation") then return numbered_equation(div) end
end

-- HTML headings show their number (typst numbers headings itself).
function Header(h)
  if is_typst() then return nil end
  local number = h.attributes["number"]
  if number then
    h.content:insert(1, pandoc.Space())
    h.content:insert(1, pandoc.Span(pandoc.Str(number), pandoc.Attr("", {"header-section-number"})))
  end
  return h
end

function Pandoc(doc)
  if #unresolved > 0 then
    io.stderr:write("[WARNING] unresolved cross-references: " .. table.concat(unresolved, ", ") .. "\n")
  end
  return doc
end

return {{Meta = Meta}, {Cite = Cite, Div = Div, Header = Header}, {Pandoc = Pandoc}}
