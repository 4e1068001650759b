"""xplus_release.model_cards"""
