# paper/paper.mk - included by the top Makefile.  `make paper [RESULTS=path/to/results.nc]`
#
# results.nc -> analysis/<name>/ (python -m diminish.analysis report)
#            -> paper/build/<name>/{numbers.tex + numbers.json, tables/*.tex, figures/*.pdf, paper.tex}
#            -> latexmk -> paper/build/<name>/paper.pdf -> paper/build/paper.pdf
# <name> is the folder holding the results file (results/demo/results.nc -> demo). Every step is a
# target with real file prerequisites: changing one figure's script redraws that figure and reruns
# LaTeX, nothing else. `make paper` never trains; all outputs are git-ignored.
#
# The file names below (ANALYSIS_CSV, FIGURE_NAMES and the figure rules, TABLE_NAMES) are those of the
# Python registries src/diminish/analysis/outputs.py and src/diminish/report/registry.py;
# tests/test_registry.py fails when the two disagree.

PAPER_PY ?= $(PY)
PAPER_ANALYSIS ?= $(PAPER_PY) -m diminish.analysis report
PAPER_NAME := $(notdir $(patsubst %/,%,$(dir $(abspath $(RESULTS)))))
ANALYSIS_DIR := analysis/$(PAPER_NAME)
PB := paper/build/$(PAPER_NAME)
RP := src/diminish/report
PAPER_EXAMPLES := $(wildcard $(dir $(RESULTS))examples.npz)
REPORT_ARGS = --results $(RESULTS) --analysis $(ANALYSIS_DIR) $(if $(PAPER_EXAMPLES),--examples $(PAPER_EXAMPLES))

# Debian packages that hold everything the paper uses (booktabs, fancyhdr, caption, microtype,
# hyperref, xcolor, Times via mathptmx) plus latexmk; texlive-latex-extra is not needed.
PAPER_APT := texlive-latex-recommended texlive-fonts-recommended latexmk
PAPER_STY := booktabs.sty fancyhdr.sty caption.sty microtype.sty hyperref.sty xcolor.sty mathptmx.sty helvet.sty

A := $(ANALYSIS_DIR)
ANALYSIS_CSV := summary fits paired_intermediate paired_pretrain pooled verdicts transfer transfer_fit \
                compare headline missing plateaus effect_by_f
ANALYSIS_OUT := $(addprefix $(A)/,$(addsuffix .csv,$(ANALYSIS_CSV)) curves.nc)
ANALYSIS_SRC := $(wildcard src/diminish/analysis/*.py src/diminish/analysis/*/*.py src/diminish/analysis/*.csv \
                  src/diminish/analysis/*/*.csv src/diminish/analysis/*.json)

# Python every report step imports (inputs, formatting, CLI) and the results reader.
REPORT_CORE := $(RP)/__init__.py $(RP)/__main__.py $(RP)/inputs.py $(RP)/latex.py $(RP)/registry.py $(RP)/build.py \
               src/diminish/results.py src/diminish/validate.py src/diminish/config.py
# numbers.tex's code: the entry module and the macro groups it runs (also imported by tables and paper.tex).
NUMBERS_PY := $(RP)/numbers.py $(wildcard $(RP)/macros*.py) $(wildcard $(RP)/statements*.py) $(RP)/summaries.py \
              $(RP)/skipped.py $(RP)/figures/examples.py experiments/paper.toml
FIG_CORE := $(REPORT_CORE) $(RP)/figures/__init__.py $(RP)/figures/_common.py
FIGURE_NAMES := curves pretrain intermediate transfer compare examples pretrain_curves
FIGURES := $(addprefix $(PB)/figures/,$(addsuffix .pdf,$(FIGURE_NAMES)))
TABLE_NAMES := baseline pretrained intermediate hyper fits verdicts paired_intermediate paired_pretrain \
               transfer compare headline provenance verdicts_all skipped
TABLES := $(addprefix $(PB)/tables/,$(addsuffix .tex,$(TABLE_NAMES)))

.PHONY: paper paper-tools clean-paper FORCE

ifneq ($(filter paper,$(MAKECMDGOALS)),)
  ifeq ($(strip $(RESULTS)),)
    $(error paper: RESULTS is empty; pass RESULTS=path/to/results.nc)
  endif
  ifeq ($(wildcard $(RESULTS)),)
    $(error paper: results file not found: $(RESULTS). Run `make demo` (synthetic data, a few minutes) or pass RESULTS=path/to/results.nc; `make paper` never trains)
  endif
  $(info paper: building from $(RESULTS) ($(if $(filter $(FULL_RESULTS),$(RESULTS)),full study,$(if $(filter $(DEMO_RESULTS),$(RESULTS)),demo results,results given on the command line))) -> $(PB)/, analysis in $(A)/)
endif

paper: paper/build/paper.pdf  ## build paper/build/paper.pdf from RESULTS (never trains)

paper/build/paper.pdf: $(PB)/paper.pdf
	cp $< $@
	@echo "paper: wrote $@ from $(RESULTS)"

# The results path of this name, rewritten only when it changes (switching RESULTS redoes everything).
$(PB)/results-path.txt: FORCE
	@mkdir -p $(@D)
	@echo '$(abspath $(RESULTS))' | cmp -s - $@ || echo '$(abspath $(RESULTS))' > $@
FORCE:

# 1. analysis folder (one command writes every file; report.json stands for all of them)
$(A)/report.json: $(RESULTS) $(PB)/results-path.txt $(ANALYSIS_SRC) | $(STAMP)
	$(PAPER_ANALYSIS) --results $(RESULTS) --out $(A)
$(ANALYSIS_OUT): $(A)/report.json ;

# 2. numbers.tex + numbers.json: every number and direction word the prose cites, computed once
#    (paper.tex reads numbers.json instead of computing them again)
$(PB)/numbers.tex $(PB)/numbers.json &: $(RESULTS) $(A)/report.json $(ANALYSIS_OUT) $(REPORT_CORE) $(NUMBERS_PY) \
                                      src/diminish/core/model.py
	$(PAPER_PY) -m diminish.report numbers $(REPORT_ARGS) --out-file $(PB)/numbers.tex

# 3. tables (one script writes them all)
$(TABLES) &: $(RESULTS) $(A)/report.json $(ANALYSIS_OUT) $(REPORT_CORE) $(wildcard $(RP)/tables*.py) $(NUMBERS_PY) \
             $(RP)/render.py $(RP)/templates/table.tex.j2
	$(PAPER_PY) -m diminish.report tables $(REPORT_ARGS) --out $(PB)/tables

# 4. figures, one script each
$(PB)/figures/curves.pdf: $(RP)/figures/curves.py $(A)/summary.csv $(A)/fits.csv $(A)/curves.nc
$(PB)/figures/pretrain.pdf: $(RP)/figures/pretrain.py $(A)/summary.csv
$(PB)/figures/intermediate.pdf: $(RP)/figures/intermediate.py $(A)/paired_intermediate.csv
$(PB)/figures/transfer.pdf: $(RP)/figures/transfer.py $(A)/transfer.csv $(A)/transfer_fit.csv
$(PB)/figures/compare.pdf: $(RP)/figures/compare.py $(A)/compare.csv
$(PB)/figures/examples.pdf: $(RP)/figures/examples.py $(PAPER_EXAMPLES)
$(PB)/figures/pretrain_curves.pdf: $(RP)/figures/pretrain_curves.py
$(FIGURES): $(PB)/figures/%.pdf: $(RESULTS) $(A)/report.json $(FIG_CORE)
	$(PAPER_PY) -m diminish.report figure $* $(REPORT_ARGS) --out-file $@

# 4b. SimMIM reconstructions by the largest pre-trained model kept beside the results (needs torch;
# a placeholder panel when there is none). Redrawn when the results file or the script changes.
$(PB)/figures/reconstructions.pdf: $(RESULTS) src/diminish/reconstructions.py
	$(PAPER_PY) -m diminish.reconstructions --results $(RESULTS) --out $@

# 5. paper.tex from the jinja2 template and numbers.json
$(PB)/paper.tex: $(PB)/numbers.json $(RESULTS) $(A)/report.json $(ANALYSIS_OUT) $(REPORT_CORE) $(RP)/render.py $(NUMBERS_PY) \
                 $(RP)/templates/paper.tex.j2 $(RP)/templates/appendix_pretraining.tex.j2 $(RP)/figures/transfer.py $(RP)/figures/examples.py $(PAPER_EXAMPLES)
	$(PAPER_PY) -m diminish.report tex $(REPORT_ARGS) --numbers $(PB)/numbers.json --out-file $@

$(PB)/references.bib: paper/references.bib
	@mkdir -p $(@D)
	cp $< $@

# 6. LaTeX (latexmk reruns pdflatex/bibtex as often as references need); when it fails, report/latexlog.py names
#    the generated file and line, what wrote that file, and the results it was built from; the layout check
#    (report/layout.py) then fails the build on float and overfull warnings above a small threshold
$(PB)/paper.pdf: $(PB)/paper.tex $(PB)/numbers.tex $(TABLES) $(FIGURES) $(PB)/figures/reconstructions.pdf \
                $(PB)/references.bib | paper-tools
	@cd $(PB) && latexmk -pdf -interaction=nonstopmode -halt-on-error -file-line-error -silent paper.tex \
	  >latexmk.out 2>&1 || { cd $(CURDIR) && $(PAPER_PY) -m diminish.report.latexlog $(PB); exit 1; }
	@$(PAPER_PY) -m diminish.report.layout $(PB)/paper.log || { rm -f $@; exit 1; }
	@touch $@
	@boxes=$$(grep -c '^Overfull' $(PB)/paper.log || true); \
	  pages=$$(grep -o 'Output written on paper.pdf ([0-9]* pages' $(PB)/paper.log | grep -o '[0-9]* pages'); \
	  echo "paper: $(PB)/paper.pdf ($$pages, $$boxes overfull boxes)"

# The TeX toolchain: install it from Debian when running as root with apt, else say how.
paper-tools:
	@missing=""; \
	for c in latexmk pdflatex bibtex kpsewhich; do command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	if [ -z "$$missing" ]; then for s in $(PAPER_STY); do [ -n "$$(kpsewhich $$s)" ] || missing="$$missing $$s"; done; fi; \
	if [ -n "$$missing" ]; then \
	  echo "paper: TeX toolchain incomplete (missing:$$missing)"; \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "paper: installing $(PAPER_APT) with apt-get"; \
	    { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(PAPER_APT); } \
	      || { echo "paper: apt-get failed"; exit 1; }; \
	  else \
	    echo "paper: install it with:"; \
	    echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends $(PAPER_APT)"; \
	    exit 1; \
	  fi; \
	fi

clean-paper:  ## remove paper/build (the analysis folders stay)
	rm -rf paper/build
