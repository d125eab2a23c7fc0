export PYTHONPATH=/work/pydeps/site:/work/pydeps/diffusers/src:/work/pydeps/transformers/src:/work/pydeps/huggingface_hub/src:/work/pydeps/peft/src:/work/pydeps/accelerate/src
export HF_HUB_OFFLINE=1
export HF_HOME=/work/pydeps/hf_home
export TRANSFORMERS_OFFLINE=1
export PATH=/usr/bin:$PATH
