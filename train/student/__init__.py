"""The student: a Qwen-VL model from transformers plus geovr's camera/scale tokens and geometry heads."""
