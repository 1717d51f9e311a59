
J
gen_ai.system
x